"""chat-server's own HTTP answers, from Hummingbird's middleware: the page's headers, gzip for
what gains from it (as Express's `compression()` gives the Node chat), conditional requests
that still match once an answer is compressed; and Engine.IO's own compression of polling
responses (the reference's `httpCompression`), which the middleware leaves to the engine."""

import gzip
import json
import zlib

import pytest
import requests
from chat_support import ChatServer

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def chat():
    server = ChatServer("sqlite")
    yield server
    server.stop()


def raw(url, headers, method="GET"):
    """The answer as sent: status, headers and the body bytes before any decoding."""
    response = requests.request(method, url, headers=headers, stream=True, timeout=5)
    body = response.raw.read(decode_content=False)
    return response.status_code, response.headers, body


def test_the_page_says_what_it_may_load_and_is_not_sniffed(chat):
    status, headers, _ = raw(chat.url + "/", IDENTITY)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/", "/js/main.js", "/socket.io/socket.io.min.js"])
def test_the_page_its_modules_and_the_client_bundle_are_gzipped_for_clients_that_take_it(chat, path):
    status, plain_headers, plain = raw(chat.url + path, IDENTITY)
    assert status == 200 and "content-encoding" not in plain_headers
    status, headers, body = raw(chat.url + path, GZIP)
    if len(plain) < 1024:  # the reference's threshold: below it gzip costs more than it saves
        assert "content-encoding" not in headers
        return
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    assert int(headers["content-length"]) == len(body) < len(plain)
    assert headers["vary"] == "Accept-Encoding" and plain_headers["vary"] == "Accept-Encoding"
    # The compressed answer is another representation: its ETag is weak (Hummingbird's file
    # middleware makes weak ones already), and a cache that sends it back gets a 304.
    plain_tag = plain_headers["etag"]
    assert headers["etag"] == (plain_tag if plain_tag.startswith("W/") else "W/" + plain_tag)
    status, _, body = raw(chat.url + path, {**GZIP, "If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    status, _, _ = raw(chat.url + path, {**IDENTITY, "If-None-Match": plain_headers["etag"]})
    assert status == 304


def test_the_history_is_gzipped_and_the_small_answers_are_not(chat):
    from chat_support import ChatClient

    client = ChatClient(chat, "ada")
    try:
        for index in range(30):
            client.send(f"message number {index} with some words in it")
    finally:
        client.close()
    status, plain_headers, plain = raw(chat.url + "/messages?limit=50", IDENTITY)
    assert status == 200 and len(plain) > 1024
    status, headers, body = raw(chat.url + "/messages?limit=50", GZIP)
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == plain
    status, headers, _ = raw(chat.url + "/healthz", GZIP)
    assert status == 200 and "content-encoding" not in headers
    # A client that refuses gzip (q=0) gets the plain answer; HEAD gets no body either way.
    status, headers, body = raw(chat.url + "/messages?limit=50", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in headers and body == plain
    status, headers, body = raw(chat.url + "/js/main.js", GZIP, method="HEAD")
    assert status == 200 and body == b"" and "content-encoding" not in headers


def replay_over_polling(url, accept_encoding, rows):
    """A raw polling client that connects with serverOffset 0 and reads the chat's replay of
    `rows` rows: the response bodies as sent, with their Content-Encoding."""
    http = requests.Session()
    headers = {"Accept-Encoding": accept_encoding}
    base = url + "/socket.io/"
    query = {"EIO": "4", "transport": "polling"}
    status, opened, body = raw_get(http, base, query, headers)
    assert status == 200 and "content-encoding" not in opened  # the open packet is short
    query["sid"] = json.loads(body[1:])["sid"]
    connect = '40{"username":"raw","serverOffset":0}'
    assert http.post(base, params=query, data=connect, timeout=5).text == "ok"
    answers, events = [], 0
    while events < rows:
        status, headers_seen, body = raw_get(http, base, query, headers)
        assert status == 200
        answers.append((headers_seen.get("content-encoding"), body))
        text = decode(headers_seen.get("content-encoding"), body).decode()
        events += sum(packet.startswith('42["chat message"') for packet in text.split("\x1e"))
    http.post(base, params=query, data="1", timeout=5)
    return answers


def events_in(answers):
    """The chat messages the answers carry, without the recovery offset each session numbers."""
    packets = "\x1e".join(decode(coding, body).decode() for coding, body in answers).split("\x1e")
    return [json.loads(packet[2:])[:4] for packet in packets if packet.startswith("42")]


def raw_get(http, base, query, headers):
    response = http.get(base, params=query, headers=headers, stream=True, timeout=5)
    return response.status_code, response.headers, response.raw.read(decode_content=False)


def decode(coding, body):
    return {None: lambda b: b, "gzip": gzip.decompress, "deflate": zlib.decompress}[coding](body)


@pytest.fixture(scope="module")
def history():
    """A chat with 200 stored messages, replayed to every client that connects with serverOffset 0."""
    server = ChatServer("sqlite")
    server.seed(200, text=lambda i: f"seeded message {i} with a few words in it")
    yield server
    server.stop()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_the_engine_compresses_long_polling_responses(history, coding):
    """The reference's `httpCompression`: a replay over polling arrives gzip- or
    deflate-encoded (zlib format), as the client prefers, from 1,024 bytes; what it decodes
    to is what an identity client gets."""
    plain = replay_over_polling(history.url, "identity", 200)
    assert all(coding_seen is None for coding_seen, _ in plain)
    compressed = replay_over_polling(history.url, f"{coding}, br;q=0.5", 200)
    assert events_in(compressed) == events_in(plain) and len(events_in(plain)) == 200
    assert {coding_seen for coding_seen, body in compressed if len(decode(coding_seen, body)) >= 1024} == {coding}
    assert all(len(decode(coding_seen, body)) < 1024 for coding_seen, body in compressed if coding_seen is None)
    wire = sum(len(body) for _, body in compressed)
    assert wire < sum(len(body) for _, body in plain) / 3


def test_http_compression_off_sends_polling_responses_as_they_are():
    server = ChatServer("sqlite", HTTP_COMPRESSION="off")
    try:
        server.seed(100, text=lambda i: f"seeded message {i} with a few words in it")
        answers = replay_over_polling(server.url, "gzip, deflate", 100)
        assert all(coding is None for coding, _ in answers)
        assert max(len(body) for _, body in answers) >= 1024
    finally:
        server.stop()


def test_on_the_engines_own_listener_the_chat_is_socket_io_alone():
    """`--framework nio`, what the benchmark sets beside the app to show what it costs: the
    same chat over Socket.IO, and no page or HTTP routes."""
    from chat_support import ChatClient

    server = ChatServer("sqlite", FRAMEWORK="nio")
    try:
        assert requests.get(server.url + "/", timeout=5).status_code == 404
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 404
        ada, bob = ChatClient(server, "ada"), ChatClient(server, "bob", transports=("polling", "websocket"))
        try:
            assert "id" in ada.send("on the engine's listener")
            assert [row[0] for row in bob.wait_for(1)] == ["on the engine's listener"]
        finally:
            ada.close()
            bob.close()
    finally:
        server.stop()
