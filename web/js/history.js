// History: the latest page comes from the history endpoint (`/messages?before=end`) before
// the socket connects, so its newest id is where the socket starts; older pages load as
// the reader scrolls up (by wheel, touch or keys).

import { $, chat, settings } from "./state.js";
import { messageItem, scrollToBottom } from "./messages.js";

const PAGE_SIZE = 50;
const NEAR_TOP = 300;

const scroller = $("scroller");
const messages = $("messages");
const olderButton = $("older-btn");
const historyStart = $("history-start");
const historyError = $("history-error");

let olderCursor = null; // `before` of the next older page; null when there is none
let loadingOlder = false;

async function fetchPage(before) {
  const query = new URLSearchParams({ before: String(before), limit: String(PAGE_SIZE) });
  if (settings.token) query.set("token", settings.token);
  const response = await fetch("/messages?" + query, { cache: "no-store" });
  if (!response.ok) throw new Error(`the history answered ${response.status}`);
  return response.json();
}

function fromHistory(row) {
  return { id: row.id, text: row.content, username: row.username, createdAt: row.created_at };
}

export function updateOlderControls() {
  olderButton.hidden = olderCursor === null;
  historyStart.hidden = olderCursor !== null || chat.shown.size === 0;
}

/// Shows the latest page, retrying until the endpoint answers.
export async function loadLatest() {
  for (let attempt = 1; ; attempt++) {
    try {
      const page = await fetchPage("end");
      historyError.hidden = true;
      const fragment = document.createDocumentFragment();
      for (const row of page.messages) {
        const message = fromHistory(row);
        const item = messageItem(message);
        chat.shown.set(message.id, item);
        fragment.append(item);
        chat.newestID = Math.max(chat.newestID, message.id);
      }
      messages.append(fragment);
      olderCursor = page.next_before;
      updateOlderControls();
      scrollToBottom();
      performance.mark("chat:latest-shown");
      // Two frames later the browser has painted them.
      requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("chat:latest-painted")));
      loadOlderIfNearTop();
      return;
    } catch (error) {
      historyError.textContent = `History unavailable (${error.message}); retrying…`;
      historyError.hidden = false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
    }
  }
}

async function loadOlder() {
  if (loadingOlder || olderCursor === null) return;
  loadingOlder = true;
  try {
    const page = await fetchPage(olderCursor);
    historyError.hidden = true;
    const heightBefore = scroller.scrollHeight;
    const topBefore = scroller.scrollTop;
    const fragment = document.createDocumentFragment();
    for (const row of page.messages) {
      const message = fromHistory(row);
      if (chat.shown.has(message.id)) continue;
      const item = messageItem(message);
      chat.shown.set(message.id, item);
      fragment.append(item);
    }
    messages.prepend(fragment);
    // Keep what the reader was looking at where it was.
    scroller.scrollTop = topBefore + (scroller.scrollHeight - heightBefore);
    olderCursor = page.next_before;
    updateOlderControls();
  } catch (error) {
    historyError.textContent = `Older messages could not be loaded (${error.message}).`;
    historyError.hidden = false;
  } finally {
    loadingOlder = false;
  }
  loadOlderIfNearTop();
}

// Older messages load as the reader nears the top, and again after a page if the reader is
// still there, or if the page does not fill the view yet.
function loadOlderIfNearTop() {
  if (olderCursor !== null && scroller.scrollTop < NEAR_TOP) loadOlder();
}
scroller.addEventListener("scroll", loadOlderIfNearTop, { passive: true });
olderButton.addEventListener("click", () => loadOlder());
