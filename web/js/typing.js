// Typing: volatile events, never stored, sent at most every two seconds and shown for a
// few seconds.

import { $, chat } from "./state.js";

const TYPING_SEND_INTERVAL = 2000;
const TYPING_SHOWN_FOR = 3500;

const input = $("input");
const typingLine = $("typing");

let lastTypingSent = 0;
const typers = new Map(); // name → when to stop showing it

input.addEventListener("input", () => {
  const socket = chat.socket;
  if (!socket || !socket.connected || !input.value) return;
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SEND_INTERVAL) return;
  lastTypingSent = now;
  socket.volatile.emit("typing"); // dropped rather than queued: stale news is no news
});

/// A message was sent: the next keystroke announces typing again at once.
export function resetTypingThrottle() {
  lastTypingSent = 0;
}

function renderTyping() {
  const now = Date.now();
  for (const [name, until] of typers) if (until <= now) typers.delete(name);
  const names = [...typers.keys()];
  typingLine.textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
}

/// Their message arrived: they stopped typing it.
export function stopTyping(name) {
  if (typers.delete(name ?? "someone")) renderTyping();
}

/// The connection dropped: nobody is known to be typing.
export function clearTyping() {
  typers.clear();
  renderTyping();
}

export function onTyping(payload) {
  const name = (payload && payload.username) ?? "someone";
  if (name === chat.username) return; // this user in another tab
  typers.set(name, Date.now() + TYPING_SHOWN_FOR);
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_FOR + 50);
}
