"""A client whose link is cut in the middle of its history replay, or whose replay meets a
database error, comes back (recovered or not) with every message exactly once, in id order,
and keeps receiving live ones. The reproduction of the bug: 1,200 rows, a client connecting
with serverOffset 0 reads 60 replayed messages and its TCP link is cut; it reconnects with
its pid and offset and is recovered; it used to get a few hundred more rows and then
nothing, live messages included."""

import json
import os
import socket
import struct
import time

import pytest
from chat_support import ChatClient, ChatServer, mariadb_start, mariadb_stop, wait_for_sockets
from eio_raw import read_frames_fast

STORES = ["sqlite", "mysql"]
ROWS = 1200


@pytest.fixture(params=STORES)
def chat(request):
    if request.param == "mysql" and "MARIADB_DIR" not in os.environ:
        pytest.skip("needs the test command's throwaway MariaDB")
    server = ChatServer(request.param)
    server.seed(ROWS)
    yield server
    server.stop()


class RawChatClient:
    """A WebSocket chat client that reads fast and can lose its link abruptly (RST)."""

    def __init__(self, chat, auth):
        self.sock = socket.create_connection(("127.0.0.1", chat.server.port), timeout=10)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.frames = read_frames_fast(self.sock)
        assert next(self.frames).startswith("0")
        self.send("40" + json.dumps(auth))
        self.connect = None
        self.ids, self.offset = [], None

    def send(self, text):
        payload, mask = text.encode(), os.urandom(4)
        length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0xFE]) + struct.pack(">H", len(payload))
        self.sock.sendall(bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_messages(self, count):
        """Reads until `count` more chat messages arrived; keeps ids and the last offset."""
        target = len(self.ids) + count
        while len(self.ids) < target:
            frame = next(self.frames)
            if frame == "2":
                self.send("3")
            elif frame.startswith("40"):
                self.connect = json.loads(frame[2:])
            elif frame.startswith('42["chat message"'):
                args = json.loads(frame[2:])
                self.ids.append(args[2])
                self.offset = args[-1]

    def cut(self):
        """The link dies: a reset, no Socket.IO or WebSocket goodbye."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def stays_quiet(self, seconds):
        self.sock.settimeout(seconds)
        try:
            frame = next(self.frames)
            return frame in ("2",)
        except (socket.timeout, TimeoutError):
            return True
        finally:
            self.sock.settimeout(10)


def resume(chat, previous, recover=True):
    auth = {"serverOffset": previous.ids[-1] if previous.ids else 0}
    if recover:
        auth |= {"pid": previous.connect["pid"], "offset": previous.offset}
    client = RawChatClient(chat, auth)
    client.ids = list(previous.ids)
    client.offset = previous.offset
    return client


def assert_live(chat, client):
    sender = ChatClient(chat, "live", server_offset=ROWS + 10_000)
    try:
        sender.send("live after the cut")
    finally:
        sender.close()
    client.read_messages(1)
    assert client.ids == list(range(1, len(client.ids) + 1))


def test_cut_mid_replay_recovered_gets_the_rest_once_and_live_ones(chat):
    first = RawChatClient(chat, {"serverOffset": 0})
    first.read_messages(60)
    first.cut()
    wait_for_sockets(chat.url, 0)  # the server saw the link go: the session is kept
    again = resume(chat, first)
    again.read_messages(ROWS - 60)
    assert again.connect["sid"] == first.connect["sid"], "not recovered"
    assert again.ids == list(range(1, ROWS + 1))
    assert_live(chat, again)
    assert again.stays_quiet(0.5)  # nothing twice
    again.cut()


def test_cut_again_and_again_during_the_replay(chat):
    client = RawChatClient(chat, {"serverOffset": 0})
    for cut_after in (60, 250, 1, 400):
        client.read_messages(cut_after)
        client.cut()
        wait_for_sockets(chat.url, 0)
        client = resume(chat, client)
    client.read_messages(ROWS - len(client.ids))
    assert client.ids == list(range(1, ROWS + 1))
    assert_live(chat, client)
    assert client.stays_quiet(0.5)
    client.cut()


def test_cut_mid_replay_without_recovery_replays_from_server_offset(chat):
    first = RawChatClient(chat, {"serverOffset": 0})
    first.read_messages(60)
    first.cut()
    again = resume(chat, first, recover=False)
    again.read_messages(ROWS - 60)
    assert again.connect["sid"] != first.connect["sid"]
    assert again.ids == list(range(1, ROWS + 1))
    assert_live(chat, again)
    again.cut()


def test_a_server_offset_ahead_of_every_stored_id_still_gets_every_new_message(chat):
    ahead = RawChatClient(chat, {"serverOffset": ROWS + 500})
    sender = ChatClient(chat, "sender", server_offset=ROWS)
    try:
        for i in range(3):
            sender.send(f"new {i}")
    finally:
        sender.close()
    ahead.read_messages(3)
    assert ahead.ids == [ROWS + 1, ROWS + 2, ROWS + 3]
    ahead.cut()


def test_a_database_error_mid_replay_is_retried_and_nothing_is_skipped(chat):
    if chat.store != "mysql":
        pytest.skip("the database is stopped and started: MariaDB")
    client = RawChatClient(chat, {"serverOffset": 0})
    client.read_messages(60)
    mariadb_stop()
    try:
        time.sleep(2)  # the outage itself: the replay's next pages fail and are retried meanwhile
    finally:
        mariadb_start()
    client.read_messages(ROWS - 60)
    assert client.ids == list(range(1, ROWS + 1))
    assert_live(chat, client)
    client.cut()
