// The chat client: the official Socket.IO client used as in the Socket.IO chat tutorial
// (server offset, client offsets, acks with retries), plus usernames from the PHP chat.
(() => {
  const $ = (id) => document.getElementById(id);
  const joinForm = $("join-form");
  const usernameInput = $("username");
  const messages = $("messages");
  const form = $("form");
  const input = $("input");
  const toggleButton = $("toggle-btn");
  const status = $("status");

  // One random id per tab, not socket.id: socket.id is undefined while disconnected, and
  // messages typed offline by two tabs would otherwise collide on the UNIQUE client offset.
  const tabId = (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36));
  let counter = 0;
  let socket = null;
  let username = "";

  function setStatus(state) {
    status.textContent = state;
    status.className = "status " + state;
  }

  function addMessage(text, author) {
    const item = document.createElement("li");
    if (author === username) item.classList.add("mine");
    const name = document.createElement("span");
    name.className = "author";
    name.textContent = author ?? "anonymous";  // text, never markup
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(name, body);
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.appendChild(item);
    if (atBottom || author === username) messages.scrollTop = messages.scrollHeight;
  }

  function start() {
    const auth = { serverOffset: 0, username };
    // A chat closed to strangers (CHAT_TOKEN) is opened with ?token=… in the page's address.
    const token = new URLSearchParams(location.search).get("token");
    if (token) auth.token = token;
    socket = io({ auth, ackTimeout: 10000, retries: 3 });
    window.socket = socket;
    socket.on("connect", () => setStatus("connected"));
    socket.on("disconnect", () => setStatus(socket.active ? "reconnecting" : "disconnected"));
    socket.io.on("reconnect_attempt", () => setStatus("reconnecting"));
    socket.on("connect_error", (error) => {
      if (!socket.active) { setStatus("disconnected"); alert(error.message); }
    });
    socket.on("chat message", (text, serverOffset, meta) => {
      addMessage(text, meta && meta.username);
      socket.auth.serverOffset = serverOffset;
    });
  }

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    username = usernameInput.value.trim();
    if (!username) return;
    $("me").textContent = username;
    $("join").hidden = true;
    $("chat").hidden = false;
    start();
    input.focus();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || !socket) return;
    // The same client offset on every retry lets the server store the message once.
    socket.emit("chat message", text, `${tabId}-${counter++}`);
    input.value = "";
  });

  toggleButton.addEventListener("click", (event) => {
    event.preventDefault();
    if (socket.connected) {
      toggleButton.textContent = "Connect";
      socket.disconnect();
      setStatus("disconnected");
    } else {
      toggleButton.textContent = "Disconnect";
      socket.connect();
    }
  });
})();
