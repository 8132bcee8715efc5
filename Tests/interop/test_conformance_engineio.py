"""Every case of the official Engine.IO v4 compliance suite (socketio/engine.io-protocol,
test-suite/test-suite.js), in our words, against eio-conformance in the suite's reference
configuration (/engine.io/ on port PORT, pingInterval 300, pingTimeout 200, echo).
Each test is named after its case. The handshake, heartbeat and close cases, which the
Socket.IO suite repeats, also run against sio-conformance on /socket.io/."""

import threading
import time

import pytest
import requests
import websocket

from conformance_support import Suite, check_open_packet, next_message_after_probe
from conftest import FRAMEWORKS
from eio_raw import NORMAL_CLOSURE, recv_close_code
from waiting import wait_until

pytestmark = pytest.mark.conformance

PING_INTERVAL, PING_TIMEOUT = 0.3, 0.2


@pytest.fixture
def suite(conformance_eio):
    return Suite(conformance_eio, "/engine.io/")


@pytest.fixture
def upgrade_suite(conformance_eio_unhurried):
    """For the upgrade cases, which answer no ping and open several connections."""
    return Suite(conformance_eio_unhurried, "/engine.io/")


@pytest.fixture(
    params=[(executable, framework) for executable in ("eio-conformance", "sio-conformance") for framework in FRAMEWORKS]
    + [("sio-conformance", "cluster")],
    ids=lambda param: f"{param[0]}-{param[1]}",
)
def any_suite(request, conformance_servers):
    """Both reference servers on every host, for the cases both suites have, and three
    sio-conformance nodes behind a balancer without sticky sessions."""
    executable, framework = request.param
    return Suite(conformance_servers(executable, framework), "/engine.io/" if executable == "eio-conformance" else "/socket.io/")


# handshake / HTTP long-polling


def test_handshake_polling_successfully_opens_a_session(any_suite):
    r = requests.get(any_suite.base, params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert r.status_code == 200
    check_open_packet(r.text, ["websocket"])


def test_handshake_polling_fails_with_an_invalid_eio_query_parameter(any_suite):
    assert requests.get(any_suite.base, params={"transport": "polling"}, timeout=5).status_code == 400
    assert requests.get(any_suite.base, params={"EIO": "abc", "transport": "polling"}, timeout=5).status_code == 400


def test_handshake_polling_fails_with_an_invalid_transport_query_parameter(any_suite):
    assert requests.get(any_suite.base, params={"EIO": "4"}, timeout=5).status_code == 400
    assert requests.get(any_suite.base, params={"EIO": "4", "transport": "abc"}, timeout=5).status_code == 400


def test_handshake_polling_fails_with_an_invalid_request_method(any_suite):
    assert requests.post(any_suite.base, params={"EIO": "4", "transport": "polling"}, timeout=5).status_code == 400
    assert requests.put(any_suite.base, params={"EIO": "4", "transport": "polling"}, timeout=5).status_code == 400


# handshake / WebSocket


def test_handshake_websocket_successfully_opens_a_session(any_suite):
    socket = any_suite.ws()
    check_open_packet(socket.recv(), [])
    socket.close()


def test_handshake_websocket_fails_with_an_invalid_eio_query_parameter(any_suite):
    assert any_suite.refused("transport=websocket")
    assert any_suite.refused("EIO=abc&transport=websocket")


def test_handshake_websocket_fails_with_an_invalid_transport_query_parameter(any_suite):
    assert any_suite.refused("EIO=4")
    assert any_suite.refused("EIO=4&transport=abc")


# message / HTTP long-polling


def test_message_polling_one_plain_text_packet(suite):
    sid = suite.open_session()
    r = suite.push(sid, "4hello")
    assert (r.status_code, r.text) == (200, "ok")
    r = suite.poll(sid)
    assert (r.status_code, r.text) == (200, "4hello")


def test_message_polling_several_plain_text_packets(suite):
    sid = suite.open_session()
    assert suite.push(sid, "4test1\x1e4test2\x1e4test3").text == "ok"
    assert suite.poll(sid).text == "4test1\x1e4test2\x1e4test3"


def test_message_polling_plain_text_and_binary_packets(suite):
    sid = suite.open_session()
    assert suite.push(sid, "4hello\x1ebAQIDBA==").text == "ok"
    assert suite.poll(sid).text == "4hello\x1ebAQIDBA=="


def test_message_polling_closes_the_session_upon_invalid_packet_format(suite):
    sid = suite.open_session()
    assert suite.push(sid, "abc").status_code == 400
    assert suite.poll(sid).status_code == 400


def test_message_polling_closes_the_session_upon_duplicate_poll_requests(suite):
    sid = suite.open_session()
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", suite.poll(sid)))
    first.start()
    time.sleep(0.005)  # the suite's own `sleep(5)` between the two GETs
    second = requests.get(suite.base, params={"EIO": "4", "transport": "polling", "sid": sid, "t": "burst"}, timeout=5)
    first.join()
    assert (results["first"].status_code, results["first"].text) == (200, "1")
    assert second.status_code == 400
    assert suite.poll(sid).status_code == 400


def test_message_polling_closes_the_session_upon_cancelled_polling_request(suite):
    sid = suite.open_session()
    import socket as sockets

    raw = sockets.create_connection(("127.0.0.1", suite.server.port))
    raw.sendall(f"GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw.close()  # the client gives up on its waiting GET (the request reaches the server first)
    # A POST of a noop is harmless while the session lives and refused once it is gone.
    wait_until(lambda: suite.push(sid, "6").status_code == 400, 5, "the session to end")
    assert suite.poll(sid).status_code == 400


# message / WebSocket


def test_message_websocket_sends_and_receives_a_plain_text_packet(suite):
    socket = suite.ws()
    socket.recv()
    socket.send("4hello")
    assert socket.recv() == "4hello"
    socket.close()


def test_message_websocket_sends_and_receives_a_binary_packet(suite):
    socket = suite.ws()
    socket.recv()
    socket.send_binary(bytes([1, 2, 3, 4]))
    assert socket.recv_data() == (websocket.ABNF.OPCODE_BINARY, bytes([1, 2, 3, 4]))
    socket.close()


def test_message_websocket_closes_the_session_upon_invalid_packet_format(suite):
    socket = suite.ws()
    socket.recv()
    socket.send("abc")
    assert recv_close_code(socket) == NORMAL_CLOSURE


# heartbeat


def test_heartbeat_polling_sends_ping_pong_packets(any_suite):
    sid = any_suite.open_session()
    for _ in range(3):
        r = any_suite.poll(sid)
        assert (r.status_code, r.text) == (200, "2")
        assert any_suite.push(sid, "3").status_code == 200


def test_heartbeat_polling_closes_the_session_upon_ping_timeout(any_suite):
    sid = any_suite.open_session()
    time.sleep(PING_INTERVAL + PING_TIMEOUT)  # protocol time: exactly what the suite sleeps
    assert any_suite.poll(sid).status_code == 400


def test_heartbeat_websocket_sends_ping_pong_packets(any_suite):
    socket = any_suite.ws()
    socket.recv()
    for _ in range(3):
        assert socket.recv() == "2"
        socket.send("3")
    socket.close()


def test_heartbeat_websocket_closes_the_session_upon_ping_timeout(any_suite):
    socket = any_suite.ws()
    started = time.monotonic()
    assert recv_close_code(socket) == NORMAL_CLOSURE  # the open packet, a ping, then the close
    assert time.monotonic() - started < PING_INTERVAL + PING_TIMEOUT + 0.3


# close


def test_close_polling_forcefully_closes_the_session(any_suite):
    sid = any_suite.open_session()
    # As the suite: the GET and the POST of `1` at once; either may be read first.
    results = {}
    waiting = threading.Thread(target=lambda: results.setdefault("poll", any_suite.poll(sid)))
    waiting.start()
    assert any_suite.push(sid, "1").status_code == 200
    waiting.join()
    assert (results["poll"].status_code, results["poll"].text) == (200, "6")
    assert any_suite.poll(sid).status_code == 400


def test_close_websocket_forcefully_closes_the_session(any_suite):
    socket = any_suite.ws()
    socket.recv()
    socket.send("1")
    assert recv_close_code(socket) == NORMAL_CLOSURE


# upgrade


def test_upgrade_successfully_upgrades_from_polling_to_websocket(upgrade_suite):
    sid = upgrade_suite.open_session()
    socket = upgrade_suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    assert socket.recv() == "3probe"
    r = upgrade_suite.poll(sid)
    assert (r.status_code, r.text) == (200, "6")
    socket.send("5")
    socket.send("4hello")
    assert socket.recv() == "4hello"
    socket.close()


def test_upgrade_ignores_http_requests_with_same_sid_after_upgrade(upgrade_suite):
    # As the suite: the probe and the upgrade are sent without waiting, then the GET at once.
    sid = upgrade_suite.open_session()
    socket = upgrade_suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    socket.send("5")
    assert upgrade_suite.poll(sid).status_code == 400
    socket.send("4hello")
    assert next_message_after_probe(socket) == "4hello"
    socket.close()


def test_upgrade_ignores_websocket_connection_with_same_sid_after_upgrade(upgrade_suite):
    sid = upgrade_suite.open_session()
    socket = upgrade_suite.ws(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("2probe")
    socket.send("5")
    assert upgrade_suite.accepted_then_closed(f"EIO=4&transport=websocket&sid={sid}")
    socket.send("4hello")
    assert next_message_after_probe(socket) == "4hello"
    socket.close()
