// What every part of the page shares: its elements, its settings from the address, and
// the little state that crosses concerns (the socket, the user's name, what is shown).

export const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);

export const settings = {
  // A chat closed to strangers (CHAT_TOKEN) is opened with ?token=… in the page's address.
  token: params.get("token"),
  // How long a message waits for its ack, and how often it is resent, before it is shown
  // as failed (the defaults of a patient chat; lower them for a flaky network or a test).
  ackTimeout: Number(params.get("ackTimeout")) || 10000,
  retries: params.has("retries") ? Math.max(0, Number(params.get("retries")) || 0) : 3,
};

export const chat = {
  socket: null,
  username: "",
  // Messages shown, by id; the page holds ids oldest…newestID, in order.
  shown: new Map(),
  newestID: 0,
};
