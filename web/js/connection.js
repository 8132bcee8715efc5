// The connection: the socket, its state in the header, and the Connect/Disconnect toggle.
// The socket connects with the newest id the page holds as `auth.serverOffset`, so the
// live stream and every reconnection go on from there: the server replays what followed
// it, nothing more.

import { $, chat, settings } from "./state.js";
import { showMessage } from "./live.js";
import { onPresence, startPresence, stopPresence } from "./presence.js";
import { clearTyping, onTyping } from "./typing.js";

const status = $("status");
const toggleButton = $("toggle-btn");

function setStatus(state, detail) {
  status.textContent = detail ? `${state} (${detail})` : state;
  status.className = "status " + state;
}

export function connect() {
  const auth = { serverOffset: chat.newestID, username: chat.username };
  if (settings.token) auth.token = settings.token;
  const socket = io({ auth, ackTimeout: settings.ackTimeout, retries: settings.retries });
  chat.socket = socket;
  window.socket = socket; // for the console, and the browser tests
  setStatus("connecting");
  socket.on("connect", () => {
    setStatus("connected");
    startPresence();
  });
  socket.on("disconnect", () => {
    stopPresence();
    clearTyping();
    setStatus(socket.active ? "reconnecting" : "disconnected");
  });
  socket.io.on("reconnect_attempt", (attempt) => setStatus("reconnecting", `attempt ${attempt}`));
  socket.on("connect_error", (error) => {
    // Refused by the server (a bad name, a missing token): it will not retry by itself.
    if (!socket.active) setStatus("disconnected", error.message);
  });
  socket.on("chat message", (text, id, meta) => {
    showMessage({ id, text, username: meta && meta.username, createdAt: meta && meta.created_at });
  });
  socket.on("presence", onPresence);
  socket.on("typing", onTyping);
}

/// Drops the socket for good (a new name is a new connection).
export function disconnect() {
  if (!chat.socket) return;
  chat.socket.disconnect();
  chat.socket = null;
  toggleButton.textContent = "Disconnect";
}

toggleButton.addEventListener("click", () => {
  const socket = chat.socket;
  if (!socket) return;
  if (socket.connected || socket.active) {
    toggleButton.textContent = "Connect";
    socket.disconnect();
    setStatus("disconnected");
  } else {
    toggleButton.textContent = "Disconnect";
    setStatus("connecting");
    socket.connect();
  }
});
