// Presence: a snapshot (`online`, answered with every connected socket) replaced on every
// connection and every minute, then `presence` changes (in batches) keyed by socket id.

import { $, chat } from "./state.js";

const PRESENCE_REFRESH = 60000;

const onlineCount = $("online-count");
const onlineList = $("online-list");

let online = new Map(); // socket id → username
let presenceBuffer = null; // changes that arrived while a snapshot was on its way
let presenceRequest = 0;
let presenceTimer = null;

function applyPresence(change) {
  if (change.online) online.set(change.id, change.username);
  else online.delete(change.id);
}

function renderPresence() {
  const counts = new Map();
  for (const name of online.values()) {
    const key = name ?? "guest";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const names = [...counts.keys()].sort((a, b) => a.localeCompare(b));
  onlineCount.textContent = `${names.length} online`;
  onlineList.replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      item.textContent = name === chat.username ? `${name} (you)` : name;
      if (counts.get(name) > 1) item.title = `${counts.get(name)} connections`;
      return item;
    }),
  );
}

function refreshPresence() {
  const socket = chat.socket;
  if (!socket || !socket.connected) return;
  const request = ++presenceRequest;
  if (presenceBuffer === null) presenceBuffer = [];
  socket.volatile.timeout(5000).emit("online", (error, list) => {
    if (request !== presenceRequest) return; // a newer request's answer will do
    const buffered = presenceBuffer ?? [];
    presenceBuffer = null;
    if (error || !Array.isArray(list)) {
      for (const change of buffered) applyPresence(change);
      renderPresence();
      setTimeout(refreshPresence, 1000);
      return;
    }
    online = new Map(list.map((entry) => [entry.id, entry.username]));
    for (const change of buffered) applyPresence(change); // newer than the snapshot, or already in it
    renderPresence();
  });
}

/// Connected: ask for the list now and every minute (a node that is killed sends no
/// goodbyes for its sockets).
export function startPresence() {
  refreshPresence();
  clearInterval(presenceTimer);
  presenceTimer = setInterval(refreshPresence, PRESENCE_REFRESH);
}

export function stopPresence() {
  clearInterval(presenceTimer);
}

/// Changes come in batches, in the order they happened.
export function onPresence(changes) {
  const valid = (Array.isArray(changes) ? changes : [changes]).filter((change) => change && typeof change.id === "string");
  if (presenceBuffer !== null) presenceBuffer.push(...valid);
  else {
    for (const change of valid) applyPresence(change);
    renderPresence();
  }
}
