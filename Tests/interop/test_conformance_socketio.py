"""Every case of the official Socket.IO v5 compliance suite (socketio/socket.io-protocol,
test-suite/test-suite.js), in our words, against sio-conformance in the suite's reference
configuration. Of its Engine.IO cases, the handshake, heartbeat and close ones run in
test_conformance_engineio.py against both servers; the upgrade ones are here, then the
Socket.IO cases. Each test is named after its case."""

import json
import time

import pytest
import websocket

from conformance_support import Suite
from eio_raw import NORMAL_CLOSURE, recv_close_code

pytestmark = pytest.mark.conformance

PING_INTERVAL, PING_TIMEOUT = 0.3, 0.2


@pytest.fixture
def suite(conformance_sio):
    return Suite(conformance_sio, "/socket.io/")


def recv(socket):
    """The next message that is not a ping."""
    while True:
        opcode, data = socket.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT and data == b"2":
            continue
        return data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data


def connected(suite):
    """A WebSocket connected to the main namespace, its `auth` event read."""
    socket = suite.ws()
    socket.recv()
    socket.send("40")
    assert recv(socket).startswith("40")
    assert recv(socket) == '42["auth",{}]'
    return socket


# Engine.IO protocol, on the Socket.IO server


def test_eio_upgrade(suite):
    sid = suite.open_session()
    socket = suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    assert socket.recv() == "3probe"
    socket.send("5")
    socket.close()


def test_eio_upgrade_ignores_http_requests_after_upgrade(suite):
    # As the suite: the probe and the upgrade are sent without waiting, then the GET at once.
    sid = suite.open_session()
    socket = suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    socket.send("5")
    assert suite.poll(sid).status_code == 400
    socket.close()


def test_eio_upgrade_ignores_websocket_after_upgrade(suite):
    sid = suite.open_session()
    socket = suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    socket.send("5")
    assert suite.accepted_then_closed(f"EIO=4&transport=websocket&sid={sid}")
    socket.close()


# Socket.IO protocol / connect


def connect_with(suite, packet):
    socket = suite.ws()
    socket.recv()
    socket.send(packet)
    return socket, recv(socket)


def test_connect_to_the_main_namespace(suite):
    socket, answer = connect_with(suite, "40")
    assert answer.startswith("40") and set(json.loads(answer[2:])) == {"sid"}
    assert recv(socket) == '42["auth",{}]'
    socket.close()


def test_connect_to_the_main_namespace_with_a_payload(suite):
    socket, answer = connect_with(suite, '40{"token":"123"}')
    assert set(json.loads(answer[2:])) == {"sid"}
    assert recv(socket) == '42["auth",{"token":"123"}]'
    socket.close()


def test_connect_to_a_custom_namespace(suite):
    socket, answer = connect_with(suite, "40/custom,")
    assert answer.startswith("40/custom,") and set(json.loads(answer[10:])) == {"sid"}
    assert recv(socket) == '42/custom,["auth",{}]'
    socket.close()


def test_connect_to_a_custom_namespace_with_a_payload(suite):
    socket, answer = connect_with(suite, '40/custom,{"token":"abc"}')
    assert set(json.loads(answer[10:])) == {"sid"}
    assert recv(socket) == '42/custom,["auth",{"token":"abc"}]'
    socket.close()


def test_connect_to_an_unknown_namespace_is_refused(suite):
    socket, answer = connect_with(suite, "40/random")
    assert answer == '44/random,{"message":"Invalid namespace"}'
    socket.close()


def test_connect_with_an_invalid_handshake_closes(suite):
    socket = suite.ws()
    socket.recv()
    socket.send("4abc")
    assert recv_close_code(socket) == NORMAL_CLOSURE


def test_connect_closes_the_connection_if_no_handshake_is_received(suite):
    socket = suite.ws()
    socket.recv()
    started = time.monotonic()
    assert recv_close_code(socket) == NORMAL_CLOSURE  # the suite answers no ping either: whichever ends it first
    assert time.monotonic() - started < 1.0 + 0.3  # connectTimeout


# Socket.IO protocol / disconnect


def test_disconnect_from_the_main_namespace(suite):
    socket = connected(suite)
    socket.send("41")
    # The suite: the next message is a ping. Nothing is sent for the DISCONNECT, and the
    # connection stays open.
    assert socket.recv() == "2"
    socket.close()


def test_connect_then_disconnect_from_a_custom_namespace(suite):
    socket = connected(suite)
    assert socket.recv() == "2"  # the suite waits for a ping first (and never answers it)
    socket.send("40/custom")
    assert recv(socket).startswith("40/custom,")
    assert recv(socket) == '42/custom,["auth",{}]'
    socket.send("41/custom")
    socket.send('42["message","message to main namespace"]')
    assert recv(socket) == '42["message-back","message to main namespace"]'
    socket.close()


# Socket.IO protocol / message


def test_message_plain_text(suite):
    socket = connected(suite)
    socket.send('42["message",1,"2",{"3":[true]}]')
    assert recv(socket) == '42["message-back",1,"2",{"3":[true]}]'
    socket.close()


def test_message_with_binary_attachments(suite):
    socket = connected(suite)
    socket.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    socket.send_binary(bytes([1, 2, 3]))
    socket.send_binary(bytes([4, 5, 6]))
    assert recv(socket) == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv(socket) == bytes([1, 2, 3])
    assert recv(socket) == bytes([4, 5, 6])
    socket.close()


def test_message_plain_text_with_an_ack(suite):
    socket = connected(suite)
    socket.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert recv(socket) == '43456[1,"2",{"3":[false]}]'
    socket.close()


def test_message_with_binary_attachments_and_an_ack(suite):
    socket = connected(suite)
    socket.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    socket.send_binary(bytes([1, 2, 3]))
    socket.send_binary(bytes([4, 5, 6]))
    assert recv(socket) == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv(socket) == bytes([1, 2, 3])
    assert recv(socket) == bytes([4, 5, 6])
    socket.close()


@pytest.mark.parametrize(
    "packet",
    ["4abc", "42{}", '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ids=["unknown packet type", "invalid payload format", "invalid ack id"],
)
def test_message_invalid_format_closes_the_connection(suite, packet):
    socket = connected(suite)
    socket.send(packet)
    started = time.monotonic()
    assert recv_close_code(socket) == NORMAL_CLOSURE
    assert time.monotonic() - started < PING_INTERVAL  # closed for the packet, not by the heartbeat
