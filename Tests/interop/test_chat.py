"""The chat end to end with the real python-socketio client, on SQLite and on MariaDB."""

import json
import os
import socket
import sqlite3
import time

import pytest
import requests
import socketio
import websocket
from chat_support import ChatClient, ChatServer, mariadb_start, mariadb_stop, wait_for_sockets
from eio_raw import read_frames_fast, rss_kib
from waiting import wait_until

STORES = ["sqlite", "mysql"]


@pytest.fixture(params=STORES)
def chat(request):
    server = ChatServer(request.param)
    yield server
    server.stop()


def test_two_clients_exchange_messages(chat):
    ada, bob = ChatClient(chat, "ada"), ChatClient(chat, "bob", transports=("polling",))
    try:
        acked = []
        for i in range(5):
            acked.append(ada.send(f"ada {i}"))  # the ack names the stored message: {id}
            acked.append(bob.send(f"bob {i}"))
        expected = [(f"{who} {i}", who) for i in range(5) for who in ("ada", "bob")]
        for client in (ada, bob):
            got = client.wait_for(10)
            assert [(text, user) for text, _, user in got] == expected  # every message once, in order
            ids = [id for _, id, _ in got]
            assert ids == sorted(ids) and len(set(ids)) == 10
            assert acked == [{"id": id} for id in ids]
    finally:
        ada.close()
        bob.close()


def test_a_resend_is_acked_stored_once_broadcast_once(chat):
    ada, bob = ChatClient(chat, "ada"), ChatClient(chat, "bob")
    try:
        first = ada.send("only once", offset="retry-1")
        assert ada.send("only once", offset="retry-1") == first  # the client retrying: the same id
        assert ada.send("only once", offset="retry-1") == first
        ada.send("marker")
        bob.wait_for(2)  # the marker follows any second broadcast of "only once"
        assert [text for text, _, _ in bob.received] == ["only once", "marker"]
        rows = chat.all_rows()
        assert [r["content"] for r in rows].count("only once") == 1
    finally:
        ada.close()
        bob.close()


def test_invalid_messages_get_an_error_ack_and_are_not_stored(chat):
    ada = ChatClient(chat, "ada")
    try:
        for args in [("", "o-1"), (5, "o-2"), ("x" * 10_001, "o-3"), ("no offset",), ("bad offset", 7), ("long offset", "x" * 256)]:
            answer = ada.client.call("chat message", args, timeout=5)
            assert isinstance(answer, dict) and "error" in answer, args
        assert "id" in ada.send("x" * 10_000)  # exactly the limit is fine
        assert len(chat.all_rows()) == 1
    finally:
        ada.close()


def test_usernames_are_validated_trimmed_and_stored(chat):
    with pytest.raises(socketio.exceptions.ConnectionError):
        bad = socketio.Client(reconnection=False)
        bad.connect(chat.url, auth={"username": "x" * 65}, transports=["websocket"], wait_timeout=5)
    with pytest.raises(socketio.exceptions.ConnectionError):
        bad = socketio.Client(reconnection=False)
        bad.connect(chat.url, auth={"username": "   "}, transports=["websocket"], wait_timeout=5)
    ada = ChatClient(chat, "  ada  ")
    try:
        ada.send("hi")
        assert ada.wait_for(1)[0][2] == "ada"
        assert chat.all_rows()[0]["username"] == "ada"
    finally:
        ada.close()


@pytest.mark.parametrize("transports", [("websocket",), ("polling",)])
def test_reconnecting_with_server_offset_gets_exactly_the_missed_rows(chat, transports):
    """On polling, the replay's pages are longer than python-engineio's client takes in one
    response (16 packets): they leave over several."""
    ada, bob = ChatClient(chat, "ada"), ChatClient(chat, "bob", transports=transports)
    try:
        for i in range(3):
            ada.send(f"seen {i}")
        bob.wait_for(3)
        offset = bob.server_offset
        bob.close()  # a deliberate disconnect: no recovery, the serverOffset replay applies
        missed = [f"missed {i}" for i in range(250)]  # more than one replay page
        for text in missed:
            ada.send(text)
        bob = ChatClient(chat, "bob", server_offset=offset, transports=transports)
        bob.wait_for(250, timeout=20)
        ada.send("live")  # after the replay: anything replayed twice would come before it
        bob.wait_for(251)
        assert [text for text, _, _ in bob.received] == missed + ["live"]
        # A new client with offset 0 gets the whole history, in order.
        carol = ChatClient(chat, "carol", transports=transports)
        assert len(carol.wait_for(254, timeout=20)) == 254
        carol.close()
    finally:
        ada.close()
        bob.close()


def test_history_endpoint_pages(chat):
    ada = ChatClient(chat, "ada")
    try:
        for i in range(7):
            ada.send(f"m{i}")
    finally:
        ada.close()
    first = chat.history(after=0, limit=3)
    assert [m["content"] for m in first["messages"]] == ["m0", "m1", "m2"]
    assert set(first["messages"][0]) == {"id", "username", "content", "created_at"}
    second = chat.history(after=first["next_after"], limit=3)
    assert [m["content"] for m in second["messages"]] == ["m3", "m4", "m5"]
    last = chat.history(after=second["next_after"], limit=3)
    assert [m["content"] for m in last["messages"]] == ["m6"] and last["next_after"] is None
    for bad in ({"after": "-1"}, {"limit": "0"}, {"limit": "501"}, {"after": "x"}):
        assert requests.get(chat.url + "/messages", params=bad, timeout=5).status_code == 400


@pytest.mark.chaos
@pytest.mark.parametrize("kill", [False, True], ids=["restart", "kill -9"])
def test_nothing_is_lost_across_a_server_restart(chat, kill):
    ada = ChatClient(chat, "ada")
    acked = []
    for i in range(20):
        text = f"before {i}"
        ada.send(text)
        acked.append(text)
    ada.close()
    chat.restart(kill=kill)
    bob = ChatClient(chat, "bob")
    try:
        got = bob.wait_for(20)
        assert [text for text, _, _ in got] == acked
        bob.send("after restart")
        assert bob.wait_for(21)[-1][0] == "after restart"
        ids = [id for _, id, _ in bob.received]
        assert ids == sorted(ids)
    finally:
        bob.close()


@pytest.mark.chaos
def test_database_outage_no_ack_until_stored_then_once():
    if "MARIADB_DIR" not in os.environ:
        pytest.skip("needs the test command's throwaway MariaDB")
    chat = ChatServer("mysql")
    ada, bob = ChatClient(chat, "ada"), ChatClient(chat, "bob")
    try:
        ada.send("before the outage")
        bob.wait_for(1)
        mariadb_stop()
        try:
            with pytest.raises(socketio.exceptions.TimeoutError):
                ada.send("during the outage", offset="outage-1", timeout=3)  # not stored: no ack
            chat.server.assert_alive()
            assert requests.get(chat.url + "/healthz", timeout=5).status_code == 503
        finally:
            mariadb_start()
        # The client's retries, with the same client offset, until one is acked.
        deadline = time.monotonic() + 30
        while True:
            try:
                stored = ada.send("during the outage", offset="outage-1", timeout=3)
                assert "id" in stored
                break
            except socketio.exceptions.TimeoutError:
                assert time.monotonic() < deadline, "never stored after the database came back"
        assert ada.send("during the outage", offset="outage-1", timeout=5) == stored  # a late retry: still once
        ada.send("marker")  # follows any second broadcast of the retried message
        bob.wait_for(3)
        assert [text for text, _, _ in bob.received] == ["before the outage", "during the outage", "marker"]
        rows = chat.all_rows()
        assert [r["content"] for r in rows] == ["before the outage", "during the outage", "marker"]
        assert requests.get(chat.url + "/healthz", timeout=5).status_code == 200
    finally:
        ada.close()
        bob.close()
        chat.stop()


def test_graceful_shutdown_acks_what_it_stored_and_lets_clients_reconnect():
    import signal

    chat = ChatServer("sqlite")
    ada = ChatClient(chat, "ada")
    acks = []
    reasons = []
    ada.client.on("disconnect", lambda *args: reasons.append(args))
    for i in range(50):
        ada.client.emit("chat message", (f"in flight {i}", f"shutdown-{i}"), callback=lambda *args: acks.append(args))
    chat.server.process.send_signal(signal.SIGTERM)
    assert chat.server.process.wait(timeout=15) == 0  # exits by itself, cleanly
    wait_until(lambda: reasons, 5, "the client to be told the server went away")
    chat.server = type(chat.server)("chat-server", chat.env, port=chat.server.port)  # the next server, same database
    stored = [r["content"] for r in chat.all_rows()]
    assert len(acks) <= len(stored)  # every acknowledged message was stored
    assert stored == [f"in flight {i}" for i in range(len(stored))]
    chat.stop()


def test_a_chat_token_closes_the_chat_to_strangers():
    chat = ChatServer("sqlite", CHAT_TOKEN="s3cret")
    try:
        stranger = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            stranger.connect(chat.url, auth={"username": "eve"}, transports=["websocket"], wait_timeout=5)
        with pytest.raises(socketio.exceptions.ConnectionError):
            stranger.connect(chat.url, auth={"username": "eve", "token": "guess"}, transports=["websocket"], wait_timeout=5)
        friend = socketio.Client(reconnection=False)
        friend.connect(chat.url, auth={"username": "ada", "token": "s3cret"}, transports=["websocket"], wait_timeout=5)
        assert "id" in friend.call("chat message", ("hi", "t-1"), timeout=5)
        friend.disconnect()
        assert requests.get(chat.url + "/messages", timeout=5).status_code == 401
        assert requests.get(chat.url + "/messages", params={"token": "s3cret"}, timeout=5).json()["messages"][0]["content"] == "hi"
        assert requests.get(chat.url + "/messages", headers={"Authorization": "Bearer s3cret"}, timeout=5).status_code == 200
    finally:
        chat.stop()


def test_metrics_and_health_for_operators():
    chat = ChatServer("sqlite")
    try:
        ada = ChatClient(chat, "ada", transports=("polling", "websocket"))
        ada.send("counted")
        ada.send("counted", offset=f"{ada.tab}-1")  # a retry: a duplicate
        wait_until(lambda: ada.client.transport() == "websocket", 5, "the upgrade")
        text = requests.get(chat.url + "/metrics", timeout=5).text
        for name in (
            'engineio_sessions_opened_total{transport="polling"}',
            "engineio_upgrades_total",
            'engineio_sessions_open{transport="websocket"}',
            "engineio_packets_received_total",
            "engineio_bytes_sent_total",
            "socketio_sockets_connected",
            'chat_inserts_total{outcome="inserted"} 1',
            'chat_inserts_total{outcome="duplicate"} 1',
            "chat_db_commit_seconds_bucket",
        ):
            assert name in text, name
        assert requests.get(chat.url + "/healthz", timeout=5).json() == {"status": "ok", "database": "up"}
        ada.close()
    finally:
        chat.stop()


def test_a_connection_cap_refuses_cleanly_and_frees_up():
    chat = ChatServer("sqlite", MAX_CONNECTIONS="2")
    try:
        first, second = ChatClient(chat, "a"), ChatClient(chat, "b")
        with pytest.raises(socketio.exceptions.ConnectionError):
            ChatClient(chat, "c")
        r = requests.get(chat.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        first.close()
        wait_for_sockets(chat.url, 1)  # the server saw it go
        third = ChatClient(chat, "c")  # a place came free
        third.close()
        second.close()
    finally:
        chat.stop()


def test_an_event_rate_limit_drops_the_excess():
    chat = ChatServer("sqlite", MAX_EVENTS_PER_SECOND="5")
    try:
        ada = ChatClient(chat, "ada")
        for i in range(30):
            ada.client.emit("chat message", (f"burst {i}", f"rl-{i}"))
        time.sleep(0.6)  # protocol time: the limit's window refills at 5 a second
        stored = len(chat.all_rows())
        assert 5 <= stored <= 10, stored  # the burst of 5, plus what 0.6 s refills
        ada.close()
    finally:
        chat.stop()


def test_a_long_history_is_replayed_at_the_readers_pace():
    """A client connecting with serverOffset 0 to a long history gets it page by page as it
    reads: the server holds a page or two for it, never the whole history. (Recovery is cut
    to 0 ms here, as its buffer would otherwise keep a copy of what was sent, up to its own
    bound.)"""
    chat = ChatServer("sqlite", RECOVERY_MS="0")
    rows, text = 8000, "h" * 4000  # 32 MB of history
    chat.server.stop()
    with sqlite3.connect(os.path.join(chat.data_dir, "chat.sqlite3")) as db:
        db.executemany(
            "INSERT INTO messages (client_offset, content, username) VALUES (?, ?, 'old')",
            ((f"seed-{i}", f"{i}:{text}") for i in range(rows)),
        )
    chat.restart()
    try:
        pid = chat.server.process.pid
        rss_before = rss_kib(pid)
        ws = websocket.create_connection(
            chat.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
            timeout=10,
            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 65536),),
        )
        ws.recv()
        ws.send("40" + json.dumps({"username": "late", "serverOffset": 0}))
        ids, peak_kib = [], 0
        for frame in read_frames_fast(ws.sock):
            if frame == "2":
                ws.send("3")
            elif frame.startswith('42["chat message"'):
                ids.append(json.loads(frame[2:])[2])
                if len(ids) % 500 == 0:
                    peak_kib = max(peak_kib, rss_kib(pid) - rss_before)
                    time.sleep(0.2)  # the reader's own pace: slower than the server
                if len(ids) == rows:
                    break
        ws.close()
        assert ids == list(range(1, rows + 1))
        assert peak_kib < 12 * 1024, peak_kib
    finally:
        chat.stop()


def test_who_is_online_and_typing_and_neither_becomes_a_flood(chat):
    """`online` answers with every connected socket and its name; `presence` follows
    connections; `typing` is relayed to the others at most once a second per sender, and
    a burst of `online` requests is answered from one read."""
    ada, bob = ChatClient(chat, "ada"), ChatClient(chat, "bob")
    typing, presence = [], []
    bob.client.on("typing", lambda payload, *offset: typing.append((payload, *offset)))  # volatile: no offset
    bob.client.on("presence", lambda changes, *offset: presence.extend(changes))  # recoverable: an offset follows
    try:
        snapshot = bob.client.call("online", timeout=5)
        assert sorted(entry["username"] for entry in snapshot) == ["ada", "bob"]
        assert {entry["id"] for entry in snapshot} == {ada.client.get_sid("/"), bob.client.get_sid("/")}
        carol = ChatClient(chat, "carol")
        carol_id = carol.client.get_sid("/")
        carol.close()
        # (Changes that the snapshot already has may come too: ada's and bob's own.)
        wait_until(lambda: len([c for c in presence if c["id"] == carol_id]) >= 2, 5, "carol's arrival and departure")
        assert [c for c in presence if c["id"] == carol_id] == [
            {"id": carol_id, "username": "carol", "online": True},
            {"id": carol_id, "username": "carol", "online": False},
        ]

        for _ in range(200):
            ada.client.emit("typing")
        answers = []
        for _ in range(50):
            ada.client.emit("online", callback=lambda *reply: answers.append(reply[0]))
        # A few of ada's wait for a read (four at most: the rest of her burst is dropped, and
        # so is a request of hers while four wait); another socket's request is admitted and
        # answered all the same, after the relays that came before it.
        wait_until(lambda: answers, 5, "an online request answered")
        assert sorted(e["username"] for e in bob.client.call("online", timeout=5)) == ["ada", "bob"]
        assert typing == [({"username": "ada"},)]  # one relayed at once; the rest fell within the second
        assert answers and all(sorted(e["username"] for e in a) == ["ada", "bob"] for a in answers)
        # Of the rest, one is relayed at the second's end: a burst is two relays, not 200.
        wait_until(lambda: len(typing) == 2, 5, "the burst's last typing, at the second's end")
        time.sleep(1.0)  # protocol time: the next second, an event is relayed at once again
        ada.client.emit("typing")
        wait_until(lambda: len(typing) == 3, 5, "the next second's typing")
        bob.client.call("online", timeout=5)
        assert len(typing) == 3
        assert chat.all_rows() == []  # none of it is stored
    finally:
        ada.close()
        bob.close()


@pytest.mark.parametrize("transports", [("websocket",), ("polling",), ("polling", "websocket")])
def test_msgpack_clients_chat_with_json_clients(transports):
    """python-socketio's serializer='msgpack' (socket.io-msgpack-parser's format): each
    connection speaks the parser its client chose, told from its first packet; messages,
    acks, duplicates and the replay of what a client missed cross between the two."""
    server = ChatServer("sqlite")
    clients = []
    try:
        ada = ChatClient(server, "ada", transports=transports, serializer="msgpack")
        bob = ChatClient(server, "bob", transports=transports)
        clients += [ada, bob]
        assert "id" in ada.send("from msgpack", offset="ada-1")
        assert [row[0] for row in bob.wait_for(1)] == ["from msgpack"]
        assert "id" in bob.send("from json")
        assert [row[0] for row in ada.wait_for(2)] == ["from msgpack", "from json"]
        assert "id" in ada.send("from msgpack", offset="ada-1")  # a retry: acked, stored once
        carol = ChatClient(server, "carol", server_offset=0, transports=transports, serializer="msgpack")
        clients.append(carol)
        assert [row[0] for row in carol.wait_for(2)] == ["from msgpack", "from json"]
        assert [row["content"] for row in server.all_rows()] == ["from msgpack", "from json"]
    finally:
        for client in clients:
            client.close()
        server.stop()
