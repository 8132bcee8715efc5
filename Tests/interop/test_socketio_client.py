"""The official Python Socket.IO client (python-socketio) against our server: namespaces,
auth, middleware refusals, events and acks both ways, binary, rooms and broadcasts, on
both transports."""

import os
import threading
import time

import pytest
import socketio
from waiting import wait_until

TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}


class Inbox:
    """Collects the events a client receives."""

    def __init__(self, client: socketio.Client, *events: str, namespace: str = "/", offsets: bool = False):
        self.offsets = offsets
        self.items: list[tuple[str, tuple]] = []
        self.cond = threading.Condition()
        for event in events:
            client.on(event, self._handler(event), namespace=namespace)

    def _handler(self, event):
        def handler(*args):
            if self.offsets:
                # Connection-state recovery appends the packet's offset, a numeric string.
                assert args and isinstance(args[-1], str) and args[-1].isdigit(), args
                args = args[:-1]
            with self.cond:
                self.items.append((event, args))
                self.cond.notify_all()

        return handler

    def wait(self, count=1, timeout=5):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)

    def until(self, item, timeout=5):
        """Waits for `item`; returns what came before it, and forgets both."""
        with self.cond:
            assert self.cond.wait_for(lambda: item in self.items, timeout), (item, self.items)
            index = self.items.index(item)
            before = self.items[:index]
            del self.items[: index + 1]
            return before


def received_before_a_marker(sender, *inboxes):
    """What each inbox got before a marker that `sender` broadcasts to everyone (pass every
    inbox that hears broadcasts, so none is left holding the marker): a packet sent to a
    socket before the marker reaches it first, so nothing that was not in its inbox by then
    is still on its way (a negative check that needs no waiting for a guess)."""
    marker = ("all", ({"marker": os.urandom(4).hex()},))
    sender.call("emit all", marker[1][0], timeout=5)
    return [inbox.until(marker) for inbox in inboxes]


def connect(server, transports=("websocket",), namespaces=None, auth=None, events=(), namespace="/", serializer="default"):
    client = socketio.Client(reconnection=False, serializer=serializer)
    inbox = Inbox(client, *events, namespace=namespace, offsets=server.recovery)
    client.connect(server.url, transports=list(transports), namespaces=namespaces, auth=auth, wait_timeout=5)
    return client, inbox


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_connect_auth_and_events(sio_server, mode):
    client, inbox = connect(sio_server, TRANSPORTS[mode], auth={"token": "abc", "n": 1}, events=("auth", "message-back"))
    try:
        assert inbox.wait(1)[0] == ("auth", ({"token": "abc", "n": 1},))
        client.emit("message", [1, "two", {"three": 3.5}, None, True])
        assert inbox.wait(2)[1] == ("message-back", ([1, "two", {"three": 3.5}, None, True],))
        assert client.call("message-with-ack", ("a", 2), timeout=5) == ("a", 2)
        assert client.call("message-with-ack", "single", timeout=5) == "single"
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_custom_namespace_with_auth(sio_server, mode):
    client = socketio.Client(reconnection=False)
    inbox = Inbox(client, "auth", namespace="/custom")
    client.connect(sio_server.url, transports=TRANSPORTS[mode], namespaces=["/custom"], auth={"hello": "custom"}, wait_timeout=5)
    try:
        assert inbox.wait(1)[0] == ("auth", ({"hello": "custom"},))
        assert client.get_sid("/custom")
    finally:
        client.disconnect()


def test_unknown_namespace_is_refused(sio_server):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError) as error:
        client.connect(sio_server.url, transports=["websocket"], namespaces=["/nope"], wait_timeout=5)
    assert "Invalid namespace" in str(error.value) or "nope" in str(error.value)


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_binary_both_ways(sio_server, mode):
    client, inbox = connect(sio_server, TRANSPORTS[mode], events=("message-back",))
    try:
        blob = bytes(range(256)) * 10
        client.emit("message", {"file": blob, "name": "x.bin", "parts": [b"\x00", b"\xff"]})
        event, args = inbox.wait(1)[0]
        assert event == "message-back"
        assert args == ({"file": blob, "name": "x.bin", "parts": [b"\x00", b"\xff"]},)
        assert client.call("message-with-ack", b"\x01\x02\x03", timeout=5) == b"\x01\x02\x03"
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_msgpack_clients_beside_json_clients(testbed, mode):
    """serializer='msgpack' (socket.io-msgpack-parser's format) on the testbed: auth, events
    and acks both ways, binary inline, recovery offsets, and a room shared with a JSON client,
    whose copy of the same broadcast comes as JSON with an attachment."""
    packer, packed = connect(testbed, TRANSPORTS[mode], auth={"token": "abc"}, events=("room message", "answer"), serializer="msgpack")
    plain, plained = connect(testbed, ["websocket"], events=("room message",))
    packer.on("question", lambda *args: ["answered", *args])
    try:
        blob = bytes(range(256)) * 10
        assert packer.call("echo", ({"file": blob, "n": 1.5, "none": None}, [1, -2, 2**40]), timeout=5) == (
            {"file": blob, "n": 1.5, "none": None},
            [1, -2, 2**40],
        )
        assert packer.call("whoami", timeout=5)["auth"] == {"token": "abc"}
        packer.emit("ask", "life")
        assert packed.wait(1)[0] == ("answer", (["answered", "life"],))
        for client in (packer, plain):
            client.call("join", "shared", timeout=5)
        plain.call("to room", ("shared", "from json", b"\x01\x02"), timeout=5)
        assert packed.wait(2)[1] == ("room message", ("from json", b"\x01\x02"))
        packer.call("to room", ("shared", "from msgpack", {"bin": b"\xff"}), timeout=5)
        assert plained.wait(1)[0] == ("room message", ("from msgpack", {"bin": b"\xff"}))
    finally:
        packer.disconnect()
        plain.disconnect()


def test_the_asyncio_client_with_msgpack_on_the_testbed(testbed):
    """The asyncio client with serializer='msgpack': binary and acks both ways."""
    import asyncio

    async def run():
        client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
        client.on("question", lambda *args: ["answered", *args])
        answers = asyncio.Queue()
        client.on("answer", lambda *args: answers.put_nowait(args))
        await client.connect(testbed.url, wait_timeout=5)
        try:
            assert await client.call("echo", {"bytes": b"\x00\x01", "list": [True, None]}, timeout=5) == {"bytes": b"\x00\x01", "list": [True, None]}
            await client.emit("ask", b"\x07")
            args = await asyncio.wait_for(answers.get(), 5)
            assert args[0] == ["answered", b"\x07"]
        finally:
            await client.disconnect()

    asyncio.run(run())


def test_middleware_connect_error(testbed):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data), namespace="/private")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(testbed.url, transports=["websocket"], namespaces=["/private"], auth={"token": "wrong"}, wait_timeout=5)
    assert errors and errors[0]["message"] == "not authorized"
    assert errors[0]["data"] == {"code": 401}

    ok = socketio.Client(reconnection=False)
    inbox = Inbox(ok, "welcome", namespace="/private", offsets=True)
    ok.connect(testbed.url, transports=["websocket"], namespaces=["/private"], auth={"token": "secret"}, wait_timeout=5)
    try:
        assert inbox.wait(1)[0] == ("welcome", ("private",))
    finally:
        ok.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_server_emit_with_ack(testbed, mode):
    client, inbox = connect(testbed, TRANSPORTS[mode], events=("answer", "answer error"))
    client.on("question", lambda *args: ["answered", *args])
    try:
        client.emit("ask", "life")
        assert inbox.wait(1)[0] == ("answer", (["answered", "life"],))
    finally:
        client.disconnect()


def test_server_emit_with_ack_times_out(testbed):
    # python-socketio always answers an ack request, so a raw client plays the silent one.
    import json

    import websocket

    ws = websocket.create_connection(testbed.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=5)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith('40{"sid":')
        ws.send('42["ask","silence"]')
        question = ws.recv()
        assert question.startswith("42") and '["question","silence"]' in question  # 42<id>[...]: an ack id
        started = time.monotonic()
        answer = ws.recv()
        while answer == "2":
            ws.send("3")
            answer = ws.recv()
        assert json.loads(answer[2:])[:2] == ["answer error", "timeout"]
        assert 1.5 < time.monotonic() - started < 3
    finally:
        ws.close()


def test_rooms_and_broadcasts(testbed):
    clients = [connect(testbed, ["websocket"], events=("room message", "broadcast", "all", "except message", "echo")) for _ in range(4)]
    (a, ia), (b, ib), (c, ic), (d, idd) = clients
    try:
        for client in (a, b, c):
            client.call("join", "red", timeout=5)
        c.call("leave", "red", timeout=5)
        # to(room) from a member reaches the other members only.
        a.call("to room", ("red", "hello red"), timeout=5)
        hello = ("room message", ("hello red",))
        assert received_before_a_marker(b, ia, ib, ic, idd) == [[], [hello], [], []]
        # broadcast reaches everyone but the sender.
        d.call("broadcast", "from d", timeout=5)
        for inbox in (ia, ib, ic):
            assert ("broadcast", ("from d",)) in inbox.wait(len(inbox.items) + 1 if not any(e == "broadcast" for e, _ in inbox.items) else len(inbox.items))
        assert not any(event == "broadcast" for event, _ in received_before_a_marker(d, ia, ib, ic, idd)[3])
        # emit to all includes the sender; except(room) leaves out the room's members.
        for inbox in (ia, ib, ic, idd):
            inbox.items.clear()
        b.call("emit all", {"n": 1}, timeout=5)
        for inbox in (ia, ib, ic, idd):
            assert inbox.wait(1)[0][0] == "all"
            assert inbox.wait(1)[0][1][0] == {"n": 1}
        for inbox in (ia, ib, ic, idd):
            inbox.items.clear()
        d.call("except room", ("red", "not for red"), timeout=5)
        not_for_red = ("except message", ("not for red",))
        assert received_before_a_marker(d, ia, ib, ic, idd) == [[], [], [not_for_red], [not_for_red]]
        # A socket's id is a room of its own: to(id) reaches it alone, until it leaves it.
        for inbox in (ia, ib, ic, idd):
            inbox.items.clear()
        c_id = c.get_sid()
        a.call("to room", (c_id, "just c"), timeout=5)
        assert received_before_a_marker(a, ia, ib, ic, idd) == [[], [], [("room message", ("just c",))], []]
        c.call("leave", c_id, timeout=5)
        a.call("to room", (c_id, "c left its room"), timeout=5)
        # With recovery on, the reference sends even socket.emit through the socket's room,
        # so a socket that left it hears nothing, not even its echo.
        c.emit("echo", "to myself")
        # Sent after the echo, on the same connection: the echo would come first.
        assert received_before_a_marker(c, ia, ib, ic, idd) == [[], [], [], []]
    finally:
        for client, _ in clients:
            client.disconnect()


def test_recovery_offsets_are_appended_to_broadcasts(testbed):
    client = socketio.Client(reconnection=False)
    inbox = Inbox(client, "all")  # keeps the offsets
    client.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    try:
        client.call("emit all", "x", timeout=5)
        event, args = inbox.wait(1)[0]
        # With recovery on, the last argument is the offset: a string.
        assert args[0] == "x" and isinstance(args[1], str)
        client.call("emit all", "y", timeout=5)
        second = inbox.wait(2)[1][1]
        assert int(second[1]) > int(args[1])
    finally:
        client.disconnect()


def test_server_side_disconnect(testbed):
    client = socketio.Client(reconnection=False)
    reasons = []
    client.on("disconnect", lambda *args: reasons.append(args))
    client.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    client.emit("disconnect me")
    wait_until(lambda: reasons, 5, "the disconnect")
    assert reasons[0][0] == client.reason.SERVER_DISCONNECT
    client.disconnect()


def test_many_clients_on_both_transports(testbed):
    clients = [connect(testbed, TRANSPORTS[mode], events=("all",)) for mode in TRANSPORTS for _ in range(4)]
    try:
        clients[0][0].call("emit all", "everyone", timeout=5)
        for _, inbox in clients:
            assert inbox.wait(1)[0][1][0] == "everyone"
    finally:
        for client, _ in clients:
            client.disconnect()


def test_parse_error_closes_only_that_connection(testbed):
    import websocket

    survivor, inbox = connect(testbed, ["websocket"], events=("echo",))
    ws = websocket.create_connection(testbed.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=5)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith('40{"sid":')
        ws.send('42["unterminated"')
        # The server closes the connection; recv ends with a close frame or a closed socket.
        try:
            while True:
                opcode, _ = ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
        except websocket.WebSocketConnectionClosedException:
            pass
        survivor.emit("echo", "still fine")
        assert inbox.wait(1)[0] == ("echo", ("still fine",))
    finally:
        survivor.disconnect()


def test_volatile_broadcasts_skip_busy_transports_and_carry_no_offset(testbed):
    import json

    import requests

    # A WebSocket client can take it at once: delivered, and without a recovery offset.
    client = socketio.Client(reconnection=False)
    inbox = Inbox(client, "volatile")  # raw arguments: no offset stripping
    client.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    # A raw polling client that is not polling right now: the volatile packet is dropped.
    base = testbed.url + "/socket.io/"
    open_packet = requests.get(base, params={"EIO": "4", "transport": "polling"}, timeout=5).text
    sid = json.loads(open_packet[1:])["sid"]
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    requests.post(base, params=params, data="40", timeout=5)
    assert requests.get(base, params=params, timeout=5).text.startswith("40{")
    try:
        client.call("volatile all", "now or never", timeout=5)
        assert inbox.wait(1)[0] == ("volatile", ("now or never",))
        client.call("emit all", "kept", timeout=5)  # a normal broadcast is queued for the GET
        payload = requests.get(base, params=params, timeout=5).text  # (the call's ack followed the queuing)
        assert '"kept"' in payload and "now or never" not in payload
    finally:
        client.disconnect()
