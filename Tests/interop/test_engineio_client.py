"""The official Python Engine.IO client (python-engineio) against our server, on every
transport: the interop half of the Engine.IO issue."""

import threading
import time

import engineio
import pytest
from engineio import packet
from waiting import wait_until

TRANSPORTS = {
    "polling-only": ["polling"],
    "websocket-only": ["websocket"],
    "upgrade": None,  # polling first, then the client upgrades to WebSocket
}
EXPECTED_TRANSPORT = {"polling-only": "polling", "websocket-only": "websocket", "upgrade": "websocket"}


class Recorder:
    def __init__(self, client: engineio.Client):
        self.messages = []
        self.disconnect_reason = None
        self.disconnected = threading.Event()
        self.arrived = threading.Condition()
        client.on("message", self._message)
        client.on("disconnect", self._disconnect)

    def _message(self, data):
        with self.arrived:
            self.messages.append(data)
            self.arrived.notify_all()

    def _disconnect(self, reason=None):
        self.disconnect_reason = reason
        self.disconnected.set()

    def wait_for(self, count, timeout=5):
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
        return self.messages


def connect(server, transports) -> tuple[engineio.Client, Recorder]:
    client = engineio.Client()
    recorder = Recorder(client)
    client.connect(server.url, transports=transports, engineio_path="engine.io")
    return client, recorder


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_text_and_binary_round_trip(conformance_eio, mode):
    client, recorder = connect(conformance_eio, TRANSPORTS[mode])
    try:
        payloads = ["hello", "€ and emoji 🎉", "", b"\x00\x01\x02\xff", "x" * 100_000, bytes(range(256)) * 100]
        for p in payloads:
            client.send(p)
        messages = recorder.wait_for(len(payloads))
        assert messages == payloads  # text stays text, binary stays binary, order kept
        assert client.transport() == EXPECTED_TRANSPORT[mode]
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_survives_three_heartbeat_rounds(conformance_eio, mode):
    client, recorder = connect(conformance_eio, TRANSPORTS[mode])
    pings = []
    original = client._receive_packet

    def counting(pkt):
        if pkt.packet_type == packet.PING:
            pings.append(time.monotonic())
        original(pkt)

    client._receive_packet = counting
    try:
        # pingInterval is 300 ms: wait for at least three pings, each answered by the client.
        wait_until(lambda: len(pings) >= 3, 5, "three pings")
        assert not recorder.disconnected.is_set()
        client.send("still here")
        assert recorder.wait_for(1) == ["still here"]
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_server_drops_a_client_that_stops_answering_pings(conformance_eio, mode):
    client, recorder = connect(conformance_eio, TRANSPORTS[mode])
    original = client._send_packet

    def no_pongs(pkt):
        if pkt.packet_type != packet.PONG:
            original(pkt)

    client._send_packet = no_pongs
    started = time.monotonic()
    # First ping at 300 ms, deadline 200 ms later: the server must have closed by ~0.5 s.
    assert recorder.disconnected.wait(5), "the server kept a silent client"
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    assert recorder.disconnect_reason in (
        client.reason.SERVER_DISCONNECT,
        client.reason.TRANSPORT_ERROR,
    )


def test_client_disconnect_ends_the_session(conformance_eio):
    client, recorder = connect(conformance_eio, ["polling"])
    sid = client.sid
    client.disconnect()
    import requests

    r = requests.get(conformance_eio.url + "/engine.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, timeout=5)
    assert r.status_code == 400
    assert r.json() == {"code": 1, "message": "Session ID unknown"}


def test_many_clients_at_once(conformance_eio):
    clients = [connect(conformance_eio, TRANSPORTS[mode]) for mode in TRANSPORTS for _ in range(5)]
    try:
        for i, (client, _) in enumerate(clients):
            client.send(f"client {i}")
        for i, (_, recorder) in enumerate(clients):
            assert recorder.wait_for(1) == [f"client {i}"]  # nobody gets anyone else's echo
    finally:
        for client, _ in clients:
            client.disconnect()
