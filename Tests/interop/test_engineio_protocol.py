"""Engine.IO v4 at the wire: the exact open packet, the reference's error answers,
the upgrade sequence, heartbeat deadlines, limits, and hostile input. Raw HTTP and raw
WebSocket frames, since a well-behaved client cannot produce most of these."""

import json
import re
import signal
import socket
import time

import pytest
import requests
import websocket
from conftest import Server
from eio_raw import GOING_AWAY, NORMAL_CLOSURE, SEP, Polling, recv_close_code, ws_connect
from waiting import wait_until

ERRORS = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}


def assert_error(response, code):
    assert response.status_code == (403 if code == 4 else 400), response.text
    assert response.headers["content-type"] == "application/json"
    assert response.text == json.dumps({"code": code, "message": ERRORS[code]}, separators=(",", ":"))


# MARK: Handshake


def test_polling_open_packet_is_exact(eio_server):
    r = requests.get(eio_server.url + "/engine.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=UTF-8"
    m = re.fullmatch(
        r'0\{"sid":"([A-Za-z0-9_-]{20,})","upgrades":\["websocket"\],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000\}',
        r.text,
    )
    assert m, r.text


def test_websocket_open_packet_is_exact(eio_server):
    ws = ws_connect(eio_server.url)
    try:
        text = ws.recv()
        assert re.fullmatch(
            r'0\{"sid":"[A-Za-z0-9_-]{20,}","upgrades":\[\],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000\}', text
        ), text
    finally:
        ws.close()


def test_session_ids_are_distinct(eio_server):
    sids = {Polling(eio_server.url).handshake()["sid"] for _ in range(50)}
    assert len(sids) == 50


# MARK: Errors


def test_error_codes(eio_server):
    base = eio_server.url + "/engine.io/"
    assert_error(requests.get(base, params={"EIO": "4", "transport": "smoke-signals"}, timeout=5), 0)
    assert_error(requests.get(base, params={"EIO": "4"}, timeout=5), 0)
    assert_error(requests.get(base, params={"EIO": "4", "transport": "polling", "sid": "unknown"}, timeout=5), 1)
    assert_error(requests.post(base, params={"EIO": "4", "transport": "polling"}, data="40", timeout=5), 2)
    assert_error(requests.get(base, params={"EIO": "4", "transport": "websocket"}, timeout=5), 3)
    assert_error(requests.get(base, params={"EIO": "3", "transport": "polling"}, timeout=5), 5)
    assert_error(requests.get(base, params={"transport": "polling"}, timeout=5), 5)


def test_websocket_with_unknown_sid_is_refused(eio_server):
    try:
        ws_connect(eio_server.url, sid="unknown")
        raise AssertionError("the upgrade was accepted")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 400
        assert json.loads(e.resp_body) == {"code": 1, "message": "Session ID unknown"}


def test_other_paths_are_not_engine_io(eio_server):
    assert requests.get(eio_server.url + "/nope", timeout=5).status_code == 404


# MARK: Polling


def test_post_then_get_echo_with_several_packets(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    r = client.post("4one" + SEP + "4two" + SEP + "bAQID")
    assert r.status_code == 200 and r.text == "ok"
    assert r.headers["content-type"] == "text/html"
    packets = []
    while len(packets) < 3:
        packets += [p for p in client.get_packets() if p != "2"]
    assert packets == ["4one", "4two", "bAQID"]


def test_get_waits_for_data(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    pending = client.get_in_background()
    # Whichever the server reads first, the GET is answered with the POST's packet: held
    # until it comes, or finding it queued. (EmbeddedServerTests holds the GET first.)
    assert client.post("4late").status_code == 200
    assert pending.join().text == "4late"


def test_second_concurrent_get_closes_the_session(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    first = client.get_in_background()
    second = client.get_in_background()
    # Whichever is read first waits and is told the session closed; the other is refused.
    answers = sorted((r.status_code, r.text) for r in (first.join(), second.join()))
    assert answers[0] == (200, "1") and answers[1][0] == 400, answers
    assert_error(client.get(), 1)


def test_oversized_post_is_refused(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    r = client.post("4" + "x" * 1_000_001)
    assert r.status_code == 413
    # The session is unharmed and small posts still work.
    assert client.post("4small").status_code == 200


def test_a_post_as_large_as_the_limit_is_taken_on_every_host(testbed):
    """Mounted in a framework too: Vapor collects bodies up to 16 KB unless told otherwise
    (and refuses one that reaches its limit), and the mount streams them up to
    `maxHttpBufferSize` inclusive instead."""
    client = Polling(testbed.url, path="/socket.io/")
    client.handshake()
    assert client.post("40").status_code == 200
    assert client.get_packets()[0].startswith("40{")
    head, tail = '421["echo","', '"]'
    text = "x" * (1_000_000 - len(head) - len(tail))
    assert client.post(head + text + tail).status_code == 200  # 1,000,000 bytes: the limit, exactly
    assert f'431["{text}"]' in client.get_packets(timeout=10)  # the testbed acks with what it got
    assert client.post(head + text + "x" + tail).status_code == 413
    assert client.post("3").status_code == 200  # the session is intact


def test_oversized_chunked_post_is_refused_without_reading_it_all(eio_server):
    client = Polling(eio_server.url)
    client.handshake()

    def chunks():
        for _ in range(2000):
            yield b"4" + b"x" * 1000

    try:
        r = client.post(chunks())
        assert r.status_code == 413
    except requests.ConnectionError:
        pass  # the server closed the connection before the client finished sending: also a refusal
    assert client.post("4small").status_code == 200


def test_malformed_payload_closes_the_session(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    pending = client.get_in_background()
    assert_error(client.post("9garbage"), 3)
    # A GET read before the garbage was waiting, and is told the session closed; one read
    # after it is refused. (EmbeddedServerTests holds the GET first.)
    answer = pending.join()
    assert (answer.status_code, answer.text) == (200, "1") or answer.status_code == 400, (answer.status_code, answer.text)
    assert_error(client.get(), 1)


def test_binary_content_type_is_refused(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    r = client.post(b"\x01\x02", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 400  # answered once the session is closed
    assert_error(client.get(), 1)


def test_client_close_packet_ends_the_session(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    pending = client.get_in_background()
    assert client.post("1").status_code == 200
    # Released with a noop, as the reference does; read after the close, it is still owed one.
    assert pending.join().text == "6"
    assert_error(client.get(), 1)


def test_ping_from_client_is_a_protocol_error(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    assert client.post("2").status_code == 200  # answered once the session has handled it
    assert_error(client.get(), 1)


# MARK: Heartbeat


def test_polling_ping_timeout_closes_at_the_deadline(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    started = time.monotonic()
    assert client.get_packets() == ["2"]  # the ping, after pingInterval
    assert 0.25 < time.monotonic() - started < 0.6
    # No pong: the session closes pingTimeout after the ping; the waiting GET carries the `1`.
    assert client.get_packets() == ["1"]
    assert time.monotonic() - started < 0.9
    assert_error(client.get(), 1)


def test_pong_keeps_a_polling_session_alive(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    for _ in range(4):
        assert client.get_packets() == ["2"]
        assert client.post("3").status_code == 200
    assert client.post("4alive").status_code == 200
    assert "4alive" in client.get_packets()


def test_websocket_ping_timeout(eio_server):
    ws = ws_connect(eio_server.url)
    ws.recv()  # open
    started = time.monotonic()
    assert ws.recv() == "2"
    # Silence: the server closes the WebSocket about 200 ms later.
    assert recv_close_code(ws) == NORMAL_CLOSURE
    assert time.monotonic() - started < 0.8


# MARK: Upgrade


def test_upgrade_sequence(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    pending = client.get_in_background()  # held, or read after the probe: released with `6` either way
    ws = ws_connect(eio_server.url, sid=client.sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        assert pending.join().text == "6"  # the waiting GET is released with a noop
        ws.send("5")
        ws.send("4over websocket")
        received = ws.recv()
        while received == "2":
            ws.send("3")
            received = ws.recv()
        assert received == "4over websocket"
        assert_error(client.get(), 3)  # polling is over for this session
        ws.send_binary(b"\x01\x02")
        opcode, data = ws.recv_data()
        while opcode == websocket.ABNF.OPCODE_TEXT and data == b"2":
            ws.send("3")
            opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b"\x01\x02")
    finally:
        ws.close()


def test_messages_sent_during_the_upgrade_arrive_once(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    ws = ws_connect(eio_server.url, sid=client.sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        # The client has paused polling; its POSTs still count, and their echoes wait for the WebSocket.
        assert client.post("4during").status_code == 200
        ws.send("5")
        received = ws.recv()
        while received == "2":
            ws.send("3")
            received = ws.recv()
        assert received == "4during"
    finally:
        ws.close()


def test_second_upgrade_is_refused(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    first = ws_connect(eio_server.url, sid=client.sid)
    second = ws_connect(eio_server.url, sid=client.sid)
    try:
        assert recv_close_code(second) == NORMAL_CLOSURE  # the server closes the second candidate
        first.send("2probe")
        assert first.recv() == "3probe"
    finally:
        first.close()


def test_broken_upgrade_keeps_polling(eio_server):
    client = Polling(eio_server.url)
    client.handshake()
    ws = ws_connect(eio_server.url, sid=client.sid)
    ws.send("4not a probe")
    assert recv_close_code(ws) == NORMAL_CLOSURE
    assert client.post("4still polling").status_code == 200
    assert "4still polling" in client.get_packets()


# MARK: WebSocket frames


def test_fragmented_frames_are_reassembled(eio_server):
    ws = ws_connect(eio_server.url)
    try:
        ws.recv()
        ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_TEXT, data="4frag"))
        ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_CONT, data="men"))
        ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_CONT, data="ted"))
        assert ws.recv() == "4fragmented"
    finally:
        ws.close()


def test_oversized_frame_closes_with_1009(eio_server):
    ws = ws_connect(eio_server.url)
    ws.recv()
    ws.send("4" + "x" * 1_000_001)
    assert recv_close_code(ws) == 1009


def test_oversized_fragmented_message_closes_with_1009(eio_server):
    ws = ws_connect(eio_server.url)
    ws.recv()
    for _ in range(3):
        ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_TEXT if _ == 0 else websocket.ABNF.OPCODE_CONT, data="x" * 400_000))
    assert recv_close_code(ws) == 1009


def test_invalid_utf8_closes_with_1007(eio_server):
    ws = ws_connect(eio_server.url)
    ws.recv()
    ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_TEXT, data=b"4\xff\xfe"))
    assert recv_close_code(ws) == 1007


def test_garbage_packet_closes_the_websocket(eio_server):
    ws = ws_connect(eio_server.url)
    ws.recv()
    ws.send("garbage")
    assert recv_close_code(ws) == NORMAL_CLOSURE


def test_websocket_ping_frames_are_answered(eio_server):
    ws = ws_connect(eio_server.url)
    try:
        ws.recv()
        ws.ping("are you there")
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PONG:
                assert data == b"are you there"
                break
    finally:
        ws.close()


def test_raw_garbage_on_the_socket_does_not_hurt_others(eio_server):
    import engineio

    survivor = engineio.Client()
    echoes = []
    survivor.on("message", echoes.append)
    survivor.connect(eio_server.url, transports=["polling"], engineio_path="engine.io")
    for junk in [b"\x00\xff" * 100, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 10 + b"\r\n\r\n\x89\x00", b"\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", eio_server.port), timeout=2) as s:
            s.sendall(junk)
            try:
                s.recv(4096)
            except OSError:
                pass
    ws = ws_connect(eio_server.url)
    ws.recv()
    ws.send_frame(websocket.ABNF(fin=1, rsv1=1, opcode=websocket.ABNF.OPCODE_TEXT, data="4bad rsv"))
    assert recv_close_code(ws) == 1002
    survivor.send("fine")
    wait_until(lambda: echoes, 5, "the survivor's echo")
    survivor.disconnect()
    assert echoes == ["fine"]
    eio_server.assert_alive()


# MARK: CORS


def test_cors_preflight_and_headers_with_any_origin(eio_server):
    base = eio_server.url + "/engine.io/"
    r = requests.options(
        base,
        params={"EIO": "4", "transport": "polling"},
        headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=5,
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type"
    r = requests.get(base, params={"EIO": "4", "transport": "polling"}, headers={"Origin": "http://elsewhere.example"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"


def test_default_cors_allows_only_the_same_origin(chat_server):
    base = chat_server.url + "/socket.io/"
    params = {"EIO": "4", "transport": "polling"}
    r = requests.get(base, params=params, headers={"Origin": "http://evil.example"}, timeout=5)
    assert_error(r, 4)
    assert "access-control-allow-origin" not in r.headers
    same = f"http://127.0.0.1:{chat_server.port}"
    r = requests.get(base, params=params, headers={"Origin": same}, timeout=5)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == same
    # No Origin at all (not a browser): allowed.
    assert requests.get(base, params=params, timeout=5).status_code == 200
    # Browsers do not apply CORS to WebSockets, so the handshake checks the origin itself.
    try:
        websocket.create_connection(
            chat_server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", origin="http://evil.example", timeout=5
        )
        raise AssertionError("a cross-origin WebSocket was accepted")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 403


@pytest.mark.parametrize("framework", ["hummingbird", "vapor"])
def test_a_framework_that_stops_gracefully_closes_the_websockets_with_a_close_frame(framework):
    """Mounted without any shutdown hook of ours (the conformance servers have none), a
    framework's graceful stop asks its connections to finish: the engine ends each
    WebSocket session with "server shutting down" and a close frame (1001, going away),
    instead of the connection being cut when the framework's wait runs out."""
    server = Server("eio-conformance", {"FRAMEWORK": framework})
    try:
        ws = websocket.create_connection(server.url.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket", timeout=10)
        assert ws.recv().startswith('0{"sid":')
        server.process.send_signal(signal.SIGTERM)
        assert recv_close_code(ws) == GOING_AWAY
    finally:
        server.stop()
