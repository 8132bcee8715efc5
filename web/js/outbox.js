// Sending: each message gets a client offset (this tab's id and a counter) and shows as
// pending; the client's own retries (`retries`) resend it with the same offset, so it is
// stored once. The ack names the stored id: the message is then shown as sent. One whose
// retries ran out is marked failed, with a Resend that reuses the offset. What is not
// stored yet survives a reload of the tab and is sent again, under the same offsets.

import { $, chat } from "./state.js";
import { markSent, scrollToBottom } from "./messages.js";
import { session, tabId } from "./storage.js";
import { resetTypingThrottle } from "./typing.js";

const outboxList = $("outbox");
const form = $("form");
const input = $("input");

let counter = Number(session.get("chat.counter")) || 0;
// Messages this tab sent and has not seen stored yet, by client offset.
const outbox = new Map();
// Acked messages whose broadcast has not arrived yet (the page was still catching up).
const awaitingEcho = new Map();

function outboxItem(entry) {
  const item = document.createElement("li");
  item.className = "mine";
  item.dataset.offset = entry.offset;
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("span");
  name.className = "author";
  name.textContent = chat.username;
  const state = document.createElement("span");
  state.className = "state";
  meta.append(name, state);
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = entry.text;
  const actions = document.createElement("span");
  actions.className = "retry";
  item.append(meta, body, actions);
  return item;
}

function setState(entry, state, detail) {
  entry.state = state;
  if (state === "rejected") saveOutbox(); // refused for good: not resent after a reload
  const item = entry.item;
  item.classList.remove("pending", "failed", "sent");
  item.classList.add(state === "rejected" ? "failed" : state);
  const label = item.querySelector(".state");
  const actions = item.querySelector(".retry");
  actions.replaceChildren();
  if (state === "pending") {
    label.textContent = "sending…";
  } else if (state === "sent") {
    label.textContent = "✓ sent";
  } else {
    label.textContent = state === "failed" ? "not sent" : `not sent: ${detail}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    if (state === "failed") {
      button.textContent = "Resend";
      button.addEventListener("click", () => {
        send(entry);
        input.focus();
      });
    } else {
      button.textContent = "Dismiss";
      button.addEventListener("click", () => {
        removeFromOutbox(entry);
        input.focus();
      });
    }
    actions.append(button);
  }
}

function removeFromOutbox(entry) {
  outbox.delete(entry.offset);
  entry.item.remove();
  saveOutbox();
}

// What is not stored yet survives a reload of the tab.
function saveOutbox() {
  const unsent = [...outbox.values()].filter((entry) => entry.state !== "rejected").map((entry) => ({ offset: entry.offset, text: entry.text }));
  session.set("chat.outbox", JSON.stringify(unsent));
  session.set("chat.counter", String(counter));
}

function addToOutbox(offset, text) {
  const entry = { offset, text, state: "pending" };
  entry.item = outboxItem(entry);
  outbox.set(entry.offset, entry);
  outboxList.append(entry.item);
  saveOutbox();
  return entry;
}

/// After a reload: the messages this tab had not seen stored, sent again as they were.
export function restoreOutbox() {
  let saved = [];
  try {
    saved = JSON.parse(session.get("chat.outbox") ?? "[]");
  } catch {}
  for (const { offset, text } of Array.isArray(saved) ? saved : []) {
    if (typeof offset === "string" && typeof text === "string" && !outbox.has(offset)) send(addToOutbox(offset, text));
  }
}

/// A new connection under another name: what the old one had not sent yet is offered for
/// resending.
export function failPending() {
  for (const entry of outbox.values()) if (entry.state === "pending") setState(entry, "failed");
}

/// A broadcast was shown as `item`: if it is one of ours, it takes the outbox entry's place.
export function claimBroadcast(message, item) {
  const acked = awaitingEcho.get(message.id);
  if (acked) {
    awaitingEcho.delete(message.id);
    removeFromOutbox(acked);
    markSent(item);
  } else if (message.username === chat.username) {
    // Most likely the broadcast of the message in flight: shown in its place at once,
    // confirmed (or given back) by the ack.
    for (const entry of outbox.values()) {
      if (entry.state === "pending" && entry.echo === undefined && entry.text === message.text) {
        entry.echo = message.id;
        entry.item.hidden = true;
        item.classList.add("pending");
        break;
      }
    }
  }
}

function send(entry) {
  entry.echo = undefined;
  entry.item.hidden = false;
  setState(entry, "pending");
  // Queued by the client while disconnected, resent on ack timeouts: the callback runs
  // once, with the ack or with the error that ended the retries.
  chat.socket.emit("chat message", entry.text, entry.offset, (error, reply) => {
    const echoed = entry.echo !== undefined ? chat.shown.get(entry.echo) : undefined;
    if (error) {
      if (echoed) echoed.classList.remove("pending");
      entry.echo = undefined;
      entry.item.hidden = false;
      setState(entry, "failed");
      return;
    }
    if (reply && reply.error) {
      if (echoed) echoed.classList.remove("pending");
      entry.item.hidden = false;
      setState(entry, "rejected", reply.error);
      return;
    }
    const id = reply && reply.id;
    if (echoed && entry.echo !== id) echoed.classList.remove("pending"); // another tab's twin
    if (id !== undefined && chat.shown.has(id)) {
      removeFromOutbox(entry);
      markSent(chat.shown.get(id));
    } else if (id !== undefined && id > chat.newestID) {
      // Stored; its broadcast is still on the way (the page is catching up).
      entry.item.hidden = false;
      setState(entry, "sent");
      awaitingEcho.set(id, entry);
    } else {
      removeFromOutbox(entry); // stored long ago, above what the page holds
    }
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text.trim() || !chat.socket) return;
  const offset = `${tabId}-${counter++}`;
  send(addToOutbox(offset, text));
  input.value = "";
  resetTypingThrottle();
  scrollToBottom();
});
