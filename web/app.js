// The chat page, on the official Socket.IO client.
//
// - History: the latest page comes from the history endpoint (`/messages?before=end`);
//   older pages load as the reader scrolls up. The socket then connects with the newest id
//   the page holds as `auth.serverOffset`, so the live stream and every reconnection go on
//   from there: the server replays what followed it, nothing more.
// - Sending: each message gets a client offset (this tab's id and a counter) and shows as
//   pending; the client's own retries (`retries`) resend it with the same offset, so it is
//   stored once. The ack names the stored id: the message is then shown as sent. One
//   whose retries ran out is marked failed, with a Resend that reuses the offset. What is
//   not stored yet survives a reload of the tab and is sent again, under the same offsets.
// - Presence: a snapshot (`online`, answered with every connected socket) replaced on
//   every connection, then `presence` changes (in batches) keyed by socket id. Typing:
//   volatile events, never stored, shown for a few seconds.
(() => {
  const $ = (id) => document.getElementById(id);
  const joinSection = $("join");
  const joinForm = $("join-form");
  const usernameInput = $("username");
  const chatSection = $("chat");
  const scroller = $("scroller");
  const messages = $("messages");
  const outboxList = $("outbox");
  const form = $("form");
  const input = $("input");
  const toggleButton = $("toggle-btn");
  const status = $("status");
  const olderButton = $("older-btn");
  const historyStart = $("history-start");
  const historyError = $("history-error");
  const jumpButton = $("jump-btn");
  const typingLine = $("typing");
  const onlineCount = $("online-count");
  const onlineList = $("online-list");

  const params = new URLSearchParams(location.search);
  // A chat closed to strangers (CHAT_TOKEN) is opened with ?token=… in the page's address.
  const token = params.get("token");
  // How long a message waits for its ack, and how often it is resent, before it is shown
  // as failed (the defaults of a patient chat; lower them for a flaky network or a test).
  const ackTimeout = Number(params.get("ackTimeout")) || 10000;
  const retries = params.has("retries") ? Math.max(0, Number(params.get("retries")) || 0) : 3;
  const PAGE_SIZE = 50;
  const TYPING_SEND_INTERVAL = 2000;
  const TYPING_SHOWN_FOR = 3500;
  const PRESENCE_REFRESH = 60000;
  const USERNAME_KEY = "chat.username";

  // One random id per tab, not socket.id: socket.id is undefined while disconnected, and
  // messages typed offline by two tabs would otherwise collide on the UNIQUE client offset.
  // It is never shown to anyone: an offset is what the server deduplicates by. Kept in the
  // tab's sessionStorage with the counter and the unsent messages, so that a reload resends
  // them under the same offsets (stored once) instead of losing them.
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
  const session = storage(() => sessionStorage); // this tab, across reloads
  const local = storage(() => localStorage); // this browser: the name
  const tabId = session.get("chat.tab") ?? (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36));
  session.set("chat.tab", tabId);
  let counter = Number(session.get("chat.counter")) || 0;
  let socket = null;
  let username = "";
  let toggledOff = false;

  // Messages shown, by id; the page holds ids oldestID…newestID, in order.
  const shown = new Map();
  let newestID = 0;
  let olderCursor = null; // `before` of the next older page; null when there is none
  let loadingOlder = false;

  // Messages this tab sent and has not seen stored yet, by client offset.
  const outbox = new Map();
  // Acked messages whose broadcast has not arrived yet (the page was still catching up).
  const awaitingEcho = new Map();

  // ---- Formatting ----

  const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

  function timeElement(iso) {
    const element = document.createElement("time");
    element.className = "time";
    const date = iso ? new Date(iso) : null;
    if (date && !Number.isNaN(date.getTime())) {
      element.dateTime = iso;
      element.title = full.format(date);
      element.textContent = date.toDateString() === new Date().toDateString() ? timeOnly.format(date) : dayAndTime.format(date);
    }
    return element;
  }

  function messageItem(message) {
    const item = document.createElement("li");
    item.dataset.id = message.id;
    if (message.username && message.username === username) item.classList.add("mine");
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("span");
    name.className = "author";
    name.textContent = message.username ?? "anonymous"; // text, never markup
    meta.append(name, timeElement(message.createdAt));
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = message.text;
    item.append(meta, body);
    return item;
  }

  function markSent(item) {
    item.classList.remove("pending");
    item.classList.add("sent");
    if (!item.querySelector(".state")) {
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = "✓ sent";
      item.querySelector(".meta").append(state);
    }
  }

  // ---- Scrolling ----

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    jumpButton.hidden = true;
  }

  scroller.addEventListener("scroll", () => {
    if (atBottom()) jumpButton.hidden = true;
  });
  jumpButton.addEventListener("click", () => {
    scrollToBottom();
    input.focus();
  });

  // ---- History ----

  async function fetchPage(before) {
    const query = new URLSearchParams({ before: String(before), limit: String(PAGE_SIZE) });
    if (token) query.set("token", token);
    const response = await fetch("/messages?" + query, { cache: "no-store" });
    if (!response.ok) throw new Error(`the history answered ${response.status}`);
    return response.json();
  }

  function fromHistory(row) {
    return { id: row.id, text: row.content, username: row.username, createdAt: row.created_at };
  }

  function updateOlderControls() {
    olderButton.hidden = olderCursor === null;
    historyStart.hidden = olderCursor !== null || shown.size === 0;
  }

  // The latest page, before the socket connects: its newest id is where the socket starts.
  async function loadLatest() {
    for (let attempt = 1; ; attempt++) {
      try {
        const page = await fetchPage("end");
        historyError.hidden = true;
        const fragment = document.createDocumentFragment();
        for (const row of page.messages) {
          const message = fromHistory(row);
          const item = messageItem(message);
          shown.set(message.id, item);
          fragment.append(item);
          newestID = Math.max(newestID, message.id);
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
        if (shown.has(message.id)) continue;
        const item = messageItem(message);
        shown.set(message.id, item);
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

  // Older messages load as the reader nears the top (by wheel, touch or keys), and again
  // after a page if the reader is still there, or if the page does not fill the view yet.
  const NEAR_TOP = 300;
  function loadOlderIfNearTop() {
    if (olderCursor !== null && scroller.scrollTop < NEAR_TOP) loadOlder();
  }
  scroller.addEventListener("scroll", loadOlderIfNearTop, { passive: true });
  olderButton.addEventListener("click", () => loadOlder());

  // ---- Live messages ----

  function showMessage(message) {
    if (message.id <= newestID) return; // delivered in id order: this one is here already
    const stick = atBottom();
    const item = messageItem(message);
    messages.append(item);
    shown.set(message.id, item);
    newestID = message.id;
    if (socket) socket.auth.serverOffset = newestID;
    updateOlderControls();
    stopTyping(message.username);

    const acked = awaitingEcho.get(message.id);
    if (acked) {
      awaitingEcho.delete(message.id);
      removeFromOutbox(acked);
      markSent(item);
    } else if (message.username === username) {
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
    if (stick || message.username === username) scrollToBottom();
    else jumpButton.hidden = false;
  }

  // ---- Sending ----

  function outboxItem(entry) {
    const item = document.createElement("li");
    item.className = "mine";
    item.dataset.offset = entry.offset;
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("span");
    name.className = "author";
    name.textContent = username;
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

  // After a reload: the messages this tab had not seen stored, sent again as they were.
  function restoreOutbox() {
    let saved = [];
    try {
      saved = JSON.parse(session.get("chat.outbox") ?? "[]");
    } catch {}
    for (const { offset, text } of Array.isArray(saved) ? saved : []) {
      if (typeof offset === "string" && typeof text === "string" && !outbox.has(offset)) send(addToOutbox(offset, text));
    }
  }

  function send(entry) {
    entry.echo = undefined;
    entry.item.hidden = false;
    setState(entry, "pending");
    // Queued by the client while disconnected, resent on ack timeouts: the callback runs
    // once, with the ack or with the error that ended the retries.
    socket.emit("chat message", entry.text, entry.offset, (error, reply) => {
      const echoed = entry.echo !== undefined ? shown.get(entry.echo) : undefined;
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
      if (id !== undefined && shown.has(id)) {
        removeFromOutbox(entry);
        markSent(shown.get(id));
      } else if (id !== undefined && id > newestID) {
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
    if (!text.trim() || !socket) return;
    const offset = `${tabId}-${counter++}`;
    send(addToOutbox(offset, text));
    input.value = "";
    lastTypingSent = 0;
    scrollToBottom();
  });

  // ---- Typing ----

  let lastTypingSent = 0;
  const typers = new Map(); // name → when to stop showing it

  input.addEventListener("input", () => {
    if (!socket || !socket.connected || !input.value) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_INTERVAL) return;
    lastTypingSent = now;
    socket.volatile.emit("typing"); // dropped rather than queued: stale news is no news
  });

  function renderTyping() {
    const now = Date.now();
    for (const [name, until] of typers) if (until <= now) typers.delete(name);
    const names = [...typers.keys()];
    typingLine.textContent =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
  }

  function stopTyping(name) {
    if (typers.delete(name ?? "someone")) renderTyping();
  }

  function onTyping(payload) {
    const name = (payload && payload.username) ?? "someone";
    if (name === username) return; // this user in another tab
    typers.set(name, Date.now() + TYPING_SHOWN_FOR);
    renderTyping();
    setTimeout(renderTyping, TYPING_SHOWN_FOR + 50);
  }

  // ---- Presence ----

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
        item.textContent = name === username ? `${name} (you)` : name;
        if (counts.get(name) > 1) item.title = `${counts.get(name)} connections`;
        return item;
      }),
    );
  }

  function refreshPresence() {
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

  // Changes come in batches, in the order they happened.
  function onPresence(changes) {
    const valid = (Array.isArray(changes) ? changes : [changes]).filter((change) => change && typeof change.id === "string");
    if (presenceBuffer !== null) presenceBuffer.push(...valid);
    else {
      for (const change of valid) applyPresence(change);
      renderPresence();
    }
  }

  // ---- Connection ----

  function setStatus(state, detail) {
    status.textContent = detail ? `${state} (${detail})` : state;
    status.className = "status " + state;
  }

  function connect() {
    const auth = { serverOffset: newestID, username };
    if (token) auth.token = token;
    socket = io({ auth, ackTimeout, retries });
    window.socket = socket;
    setStatus("connecting");
    socket.on("connect", () => {
      setStatus("connected");
      refreshPresence();
      clearInterval(presenceTimer);
      presenceTimer = setInterval(refreshPresence, PRESENCE_REFRESH);
    });
    socket.on("disconnect", () => {
      clearInterval(presenceTimer);
      typers.clear();
      renderTyping();
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

  toggleButton.addEventListener("click", () => {
    if (!socket) return;
    if (socket.connected || socket.active) {
      toggledOff = true;
      toggleButton.textContent = "Connect";
      socket.disconnect();
      setStatus("disconnected");
    } else {
      toggledOff = false;
      toggleButton.textContent = "Disconnect";
      setStatus("connecting");
      socket.connect();
    }
  });

  // ---- Joining ----

  let historyLoaded = null;

  async function join(name) {
    username = name;
    local.set(USERNAME_KEY, name);
    $("me").textContent = name;
    joinSection.hidden = true;
    chatSection.hidden = false;
    input.focus();
    if (socket) {
      // A new name is a new connection: the server takes the name from the handshake.
      // What the old one had not sent yet is offered for resending on the new one.
      socket.disconnect();
      socket = null;
      toggleButton.textContent = "Disconnect";
      toggledOff = false;
      for (const entry of outbox.values()) if (entry.state === "pending") setState(entry, "failed");
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
    usernameInput.value = username;
    chatSection.hidden = true;
    joinSection.hidden = false;
    usernameInput.focus();
    usernameInput.select();
  });

  const name = local.get(USERNAME_KEY);
  if (name) join(name);
  else usernameInput.focus();
})();
