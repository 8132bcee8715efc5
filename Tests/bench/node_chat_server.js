// The Socket.IO tutorial's chat on Node's socket.io, with nothing stored: the reference the
// benchmark command compares with when NODE_SOCKETIO_DIR names a directory whose
// node_modules holds socket.io (none is installed or fetched by the command).
// Each `chat message` (text, clientOffset, ack) goes to everyone as (text, id), then acks.
const { createServer } = require("node:http");
const { Server } = require("socket.io");

const server = createServer();
const io = new Server(server, { connectionStateRecovery: {} });
let lastID = 0;
io.on("connection", (socket) => {
  socket.on("chat message", (text, clientOffset, callback) => {
    lastID += 1;
    io.emit("chat message", text, lastID);
    if (typeof callback === "function") callback();
  });
});
server.listen(Number(process.env.PORT || 3000), process.env.HOST || "127.0.0.1");
