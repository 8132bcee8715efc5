// Web storage that may be disabled (a private window, a policy): then nothing is kept.

function storage(area) {
  return {
    get(key) {
      try {
        return area().getItem(key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        area().setItem(key, value);
      } catch {}
    },
  };
}

export const session = storage(() => sessionStorage); // this tab, across reloads
export const local = storage(() => localStorage); // this browser: the name

// One random id per tab, not socket.id: socket.id is undefined while disconnected, and
// messages typed offline by two tabs would otherwise collide on the UNIQUE client offset.
// It is never shown to anyone: an offset is what the server deduplicates by. Kept in the
// tab's sessionStorage with the counter and the unsent messages (outbox.js), so that a
// reload resends them under the same offsets (stored once) instead of losing them.
export const tabId =
  session.get("chat.tab") ?? (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36));
session.set("chat.tab", tabId);
