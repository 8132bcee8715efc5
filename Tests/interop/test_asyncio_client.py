"""python-socketio's asyncio client (AsyncClient over aiohttp) against the chat, with its
default settings. aiohttp keeps HTTP connections alive and sends the WebSocket upgrade on a
connection that already carried polling requests; the reference server accepts that, so
must we. Also a raw client that puts every request of a session on one TCP connection."""

import asyncio
import base64
import json
import os
import socket

import pytest
import socketio
from chat_support import ChatServer


@pytest.fixture(scope="module")
def chat():
    server = ChatServer("sqlite")
    yield server
    server.stop()


async def chat_round_trip(url, serializers=("default", "default"), **connect_options):
    """Connects two AsyncClients (with these serializers), sends a message from the first,
    sees it on both; returns the transports they ended on."""
    clients, inboxes = [], []
    for serializer in serializers:
        client = socketio.AsyncClient(reconnection=False, serializer=serializer)
        inbox = asyncio.Queue()
        client.on("chat message", lambda *args, inbox=inbox: inbox.put_nowait(args))
        await client.connect(url, auth={"serverOffset": 0, "username": "async"}, wait_timeout=5, **connect_options)
        clients.append(client)
        inboxes.append(inbox)
    try:
        if "websocket" in connect_options.get("transports", ["websocket"]):
            # The upgrade follows the connection: wait for it, up to a deadline.
            deadline = asyncio.get_running_loop().time() + 5
            while any(client.transport() != "websocket" for client in clients) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)  # a condition checked again, not a guess
        text = "from asyncio " + os.urandom(4).hex()
        assert "id" in (await clients[0].call("chat message", (text, "async-" + os.urandom(6).hex()), timeout=5))
        for inbox in inboxes:
            while True:
                args = await asyncio.wait_for(inbox.get(), 5)
                if args[0] == text:
                    break
        return [client.transport() for client in clients]
    finally:
        for client in clients:
            await client.disconnect()


def test_the_asyncio_client_with_default_settings_connects_upgrades_and_chats(chat):
    transports = asyncio.run(chat_round_trip(chat.url))
    assert transports == ["websocket", "websocket"]


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
def test_the_asyncio_client_on_one_transport(chat, transports):
    assert asyncio.run(chat_round_trip(chat.url, transports=transports)) == transports * 2


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
@pytest.mark.parametrize("serializers", [("msgpack", "default"), ("default", "msgpack")])
def test_the_asyncio_client_with_msgpack_chats_with_json_clients(chat, transports, serializers):
    """serializer='msgpack' (socket.io-msgpack-parser's format) beside the default one: each
    connection speaks its own, both ways."""
    assert asyncio.run(chat_round_trip(chat.url, serializers=serializers, transports=transports)) == [transports[-1]] * 2


def test_the_asyncio_client_on_polling_takes_a_long_backlog(chat):
    """A history replayed over polling queues more packets for a GET than python-engineio's
    client reads in one response (16, or it drops the connection): they leave 16 at a time."""

    async def run():
        writer = socketio.AsyncClient(reconnection=False)
        await writer.connect(chat.url, auth={"serverOffset": 0, "username": "w"}, transports=["websocket"], wait_timeout=5)
        tag = os.urandom(4).hex()
        for i in range(60):
            await writer.call("chat message", (f"{tag} {i}", f"{tag}-{i}"), timeout=5)
        await writer.disconnect()
        reader = socketio.AsyncClient(reconnection=False)
        ids, done = [], asyncio.Event()

        def received(text, id, *rest):
            ids.append(id)
            if text == f"{tag} 59":
                done.set()

        reader.on("chat message", received)
        await reader.connect(chat.url, auth={"serverOffset": 0, "username": "r"}, transports=["polling"], wait_timeout=5)
        try:
            await asyncio.wait_for(done.wait(), 10)
            assert reader.connected and ids == sorted(ids) and len(ids) >= 60
        finally:
            await reader.disconnect()

    asyncio.run(run())


class OneConnection:
    """Every HTTP request of an Engine.IO session on one keep-alive TCP connection, then
    the WebSocket upgrade on that same connection."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def request(self, method, query, body=b"", headers=()):
        head = f"{method} /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        self.sock.sendall(head.encode() + b"\r\n" + body)
        return self.response()

    def response(self):
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body.decode()

    def send_frame(self, text):
        payload, mask = text.encode(), os.urandom(4)
        header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else bytes([0x81, 0xFE]) + len(payload).to_bytes(2, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv_frame(self):
        while True:
            if len(self.buffer) >= 2:
                length, start = self.buffer[1] & 0x7F, 2
                if length == 126:
                    length, start = int.from_bytes(self.buffer[2:4], "big"), 4
                if len(self.buffer) >= start + length:
                    frame, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
                    return frame.decode()
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk


def upgrade_request(conn, sid, version="13"):
    key = base64.b64encode(os.urandom(16)).decode()
    return conn.request(
        "GET",
        f"EIO=4&transport=websocket&sid={sid}",
        headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)],
    )


def test_every_request_and_the_upgrade_on_one_connection(testbed):
    """The engine's own listener upgrades on any request of a kept-alive connection, as the
    reference does, and so does Vapor's upgrader. Mounted in Hummingbird, whose upgrader reads first requests only, such an
    upgrade is sent to a new connection (307, `Connection: close`), where it is taken: the
    client (aiohttp follows the redirect) ends up upgraded all the same."""
    conn = OneConnection(testbed.port)
    status, _, body = conn.request("GET", "EIO=4&transport=polling")
    assert status == 200
    sid = json.loads(body[1:])["sid"]
    query = f"EIO=4&transport=polling&sid={sid}"
    assert conn.request("POST", query, b"40")[:1] == (200,)
    status, _, body = conn.request("GET", query)
    assert status == 200 and body.startswith("40{")
    status, headers, _ = upgrade_request(conn, sid)
    if testbed.framework == "hummingbird":
        assert status == 307 and headers["connection"] == "close" and headers["location"] == f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
        conn = OneConnection(testbed.port)
        status, headers, _ = upgrade_request(conn, sid)
    assert status == 101 and headers["upgrade"].lower() == "websocket"
    conn.send_frame("2probe")
    assert conn.recv_frame() == "3probe"
    conn.send_frame("5")
    conn.send_frame('421["echo","one connection"]')
    frames = []
    while "431[\"one connection\"]" not in frames:
        frames.append(conn.recv_frame())
        assert len(frames) < 100, frames[-5:]
    conn.sock.close()


def test_a_refused_upgrade_leaves_the_session_on_polling(testbed):
    sid = json.loads(OneConnection(testbed.port).request("GET", "EIO=4&transport=polling")[2][1:])["sid"]
    # A bad Sec-WebSocket-Version (on a connection of its own: see above for kept-alive ones).
    # The engine's listener answers 400; mounted in Hummingbird, NIO's upgrader refuses it
    # before anything of ours sees it, by closing the connection (so does Hummingbird's own
    # WebSocket server; in Vapor, NIO's upgrader fails the 101 and Vapor closes the
    # connection). Either way the client hears the upgrade refused.
    if testbed.framework in ("hummingbird", "vapor"):
        with pytest.raises(AssertionError, match="closed the connection"):
            upgrade_request(OneConnection(testbed.port), sid, version="7")
    else:
        status, headers, _ = upgrade_request(OneConnection(testbed.port), sid, version="7")
        assert status == 400 and headers.get("connection") == "close"
    # The session is intact: the client goes on polling, on another connection.
    other = OneConnection(testbed.port)
    query = f"EIO=4&transport=polling&sid={sid}"
    assert other.request("POST", query, b"40")[0] == 200
    status, _, body = other.request("GET", query)
    assert status == 200 and body.startswith("40{"), body
