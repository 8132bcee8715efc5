"""A deliberately small raw Engine.IO v4 client, for the cases a well-behaved client
library cannot produce: silence instead of pongs, overlapping GETs, garbage."""

import json
import threading

import requests
import websocket

SEP = "\x1e"


class Polling:
    def __init__(self, base_url: str, path: str = "/engine.io/"):
        self.base = base_url + path
        self.http = requests.Session()
        self.sid = None
        self.open = None

    def handshake(self) -> dict:
        r = self.http.get(self.base, params={"EIO": "4", "transport": "polling"}, timeout=5)
        assert r.status_code == 200, r.text
        assert r.text.startswith("0")
        self.open = json.loads(r.text[1:])
        self.sid = self.open["sid"]
        return self.open

    def params(self) -> dict:
        return {"EIO": "4", "transport": "polling", "sid": self.sid}

    def get(self, timeout=5) -> requests.Response:
        return self.http.get(self.base, params=self.params(), timeout=timeout)

    def get_packets(self, timeout=5) -> list[str]:
        r = self.get(timeout)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text.split(SEP)

    def post(self, body, **kwargs) -> requests.Response:
        return self.http.post(self.base, params=self.params(), data=body, timeout=5, **kwargs)

    def get_in_background(self) -> "Background":
        return Background(lambda: requests.get(self.base, params=self.params(), timeout=10))


class Background:
    def __init__(self, fn):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - surfaced by join()
            self.error = e

    def join(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "request still pending"
        if self.error:
            raise self.error
        return self.result


def ws_url(base_url: str, sid: str | None = None, path: str = "/engine.io/") -> str:
    url = base_url.replace("http://", "ws://") + path + "?EIO=4&transport=websocket"
    if sid:
        url += "&sid=" + sid
    return url


def ws_connect(base_url: str, sid: str | None = None, **kwargs) -> websocket.WebSocket:
    return websocket.create_connection(ws_url(base_url, sid), timeout=5, **kwargs)


# The status of the close frames our server sends when it ends a session: the reference's
# `ws` sends its close frame without a status (RFC 6455 §7.1.5 calls that 1005); ours names
# a normal closure. Either way the client reads a close frame, not a dropped connection.
NORMAL_CLOSURE = 1000
NO_STATUS = 1005
GOING_AWAY = 1001  # the server is shutting down (RFC 6455 7.4.1)


def recv_close_code(ws: websocket.WebSocket) -> int:
    """Reads frames until the server's close frame and returns its status code (NO_STATUS
    when the frame carries none). Fails when the connection ends without a close frame: a
    bare TCP drop is not a WebSocket close."""
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError) as error:
            raise AssertionError(f"the connection ended without a close frame ({error!r})") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big") if len(data) >= 2 else NO_STATUS


def read_frames_fast(sock, timeout=10):
    """Yields the text of the server's (unmasked, unfragmented) frames, reading the socket in
    large chunks: a replay of megabytes must not make the reader itself a slow consumer."""
    sock.settimeout(timeout)
    data, start = bytearray(), 0
    while True:
        if len(data) - start >= 2:
            length, header = data[start + 1] & 0x7F, 2
            if length == 126:
                length, header = int.from_bytes(data[start + 2 : start + 4], "big"), 4
            elif length == 127:
                length, header = int.from_bytes(data[start + 2 : start + 10], "big"), 10
            if len(data) - start >= header + length:
                yield data[start + header : start + header + length].decode()
                start += header + length
                continue
        del data[:start]
        start = 0
        chunk = sock.recv(1 << 20)
        assert chunk, "the server closed the connection"
        data += chunk


def rss_kib(pid):
    """A process's resident memory, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
