"""Connection-state recovery at the wire, with a raw client: the CONNECT answer carries a
pid, a session is restored once only, and an offset that fell out of the buffer is
refused cleanly."""

import json
import socket

import socketio
import websocket
from waiting import wait_until


class Raw:
    """A raw Socket.IO client over one WebSocket, answering pings itself."""

    def __init__(self, server, auth=None):
        self.ws = websocket.create_connection(server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=5)
        assert self.ws.recv().startswith("0{")
        self.ws.send("40" + (json.dumps(auth) if auth else ""))
        answer = self.recv()
        assert answer.startswith("40{"), answer
        self.connect = json.loads(answer[2:])

    def recv(self):
        while True:
            message = self.ws.recv()
            if message == "2":
                self.ws.send("3")
                continue
            return message

    def event(self):
        message = self.recv()
        assert message.startswith("42"), message
        return json.loads(message[2:])

    def call(self, *args, id=7):
        self.ws.send(f"42{id}" + json.dumps(list(args)))
        while True:
            message = self.recv()
            if message.startswith(f"43{id}"):
                return json.loads(message[2 + len(str(id)) :])

    def drop(self):
        """Closes the TCP connection without a WebSocket close: a lost link."""
        self.ws.sock.shutdown(socket.SHUT_RDWR)
        self.ws.sock.close()


def wait_until_dropped(server, sid):
    """Waits until the server has noticed a lost link: the socket is no longer connected."""
    observer = socketio.Client(reconnection=False)
    observer.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        wait_until(lambda: sid not in {s["id"] for s in observer.call("fetch sockets", timeout=5)}, 5, "the server to see the link lost")
    finally:
        observer.disconnect()


def broadcast(server, *texts):
    sender = socketio.Client(reconnection=False)
    sender.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        for text in texts:
            sender.call("emit all", text, timeout=5)
    finally:
        sender.disconnect()


def test_connect_answer_carries_sid_and_pid(recovery_testbed):
    client = Raw(recovery_testbed)
    assert set(client.connect) == {"sid", "pid"}
    assert client.connect["sid"] != client.connect["pid"]


def test_a_session_is_restored_once_only(recovery_testbed):
    first = Raw(recovery_testbed)
    broadcast(recovery_testbed, "one")
    event = first.event()
    assert event[:2] == ["all", "one"]
    offset = event[2]
    first.drop()
    wait_until_dropped(recovery_testbed, first.connect["sid"])
    broadcast(recovery_testbed, "two")

    auth = {"pid": first.connect["pid"], "offset": offset}
    second = Raw(recovery_testbed, auth)
    assert second.connect == first.connect  # same sid and pid
    assert second.event()[:2] == ["all", "two"]  # the missed packet
    assert second.call("whoami")[0]["recovered"] is True

    # The session was consumed: a replay of the same pid gets a fresh socket.
    third = Raw(recovery_testbed, auth)
    assert third.connect["sid"] != first.connect["sid"]
    assert third.call("whoami")[0]["recovered"] is False
    # And the recovered socket still gets broadcasts (socketio/socket.io#4880).
    broadcast(recovery_testbed, "three")
    assert second.event()[:2] == ["all", "three"]
    assert third.event()[:2] == ["all", "three"]


def test_an_offset_that_left_the_buffer_is_refused(recovery_testbed):
    client = Raw(recovery_testbed)
    broadcast(recovery_testbed, "first")
    offset = client.event()[2]
    client.drop()
    wait_until_dropped(recovery_testbed, client.connect["sid"])
    broadcast(recovery_testbed, *[f"flood {i}" for i in range(60)])  # the buffer holds 50
    again = Raw(recovery_testbed, {"pid": client.connect["pid"], "offset": offset})
    assert again.connect["sid"] != client.connect["sid"]
    assert again.call("whoami")[0]["recovered"] is False


def test_unknown_pid_and_malformed_offsets_connect_fresh(recovery_testbed):
    for auth in ({"pid": "nope", "offset": "1"}, {"pid": 5, "offset": "1"}, {"pid": "nope", "offset": 1}, {"offset": "1"}):
        client = Raw(recovery_testbed, auth)
        assert client.call("whoami")[0]["recovered"] is False
        assert client.call("whoami")[0]["auth"] == auth  # the handshake keeps the whole auth payload
