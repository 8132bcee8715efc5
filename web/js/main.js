// The chat page, on the official Socket.IO client (loaded before this module as the global
// `io`). Each concern has its module: state.js (what they share), storage.js (what a tab
// keeps across reloads), messages.js (the list), history.js (pages from /messages),
// live.js (what the socket delivers), outbox.js (sending), typing.js, presence.js and
// connection.js (the socket and the toggle). This one joins under a name.

import { $, chat } from "./state.js";
import { local } from "./storage.js";
import { loadLatest } from "./history.js";
import { failPending, restoreOutbox } from "./outbox.js";
import { connect, disconnect } from "./connection.js";

const USERNAME_KEY = "chat.username";

const joinSection = $("join");
const joinForm = $("join-form");
const usernameInput = $("username");
const chatSection = $("chat");
const input = $("input");

let historyLoaded = null;

async function join(name) {
  chat.username = name;
  local.set(USERNAME_KEY, name);
  $("me").textContent = name;
  joinSection.hidden = true;
  chatSection.hidden = false;
  input.focus();
  if (chat.socket) {
    // A new name is a new connection: the server takes the name from the handshake.
    disconnect();
    failPending();
  }
  historyLoaded ??= loadLatest();
  await historyLoaded;
  connect();
  restoreOutbox();
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = usernameInput.value.trim();
  if (name) join(name);
});

$("rename-btn").addEventListener("click", () => {
  usernameInput.value = chat.username;
  chatSection.hidden = true;
  joinSection.hidden = false;
  usernameInput.focus();
  usernameInput.select();
});

const name = local.get(USERNAME_KEY);
if (name) join(name);
else usernameInput.focus();
