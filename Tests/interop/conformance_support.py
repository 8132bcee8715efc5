"""What both compliance-suite files need: one Engine.IO server reached at one path."""

import json

import requests
import websocket


class Suite:
    def __init__(self, server, path):
        self.server = server
        self.base = server.url + path
        self.ws_base = server.url.replace("http", "ws") + path

    def open_session(self):
        r = requests.get(self.base, params={"EIO": "4", "transport": "polling"}, timeout=5)
        return json.loads(r.text[1:])["sid"]

    def poll(self, sid, **kwargs):
        return requests.get(self.base, params={"EIO": "4", "transport": "polling", "sid": sid, **kwargs}, timeout=5)

    def push(self, sid, body):
        return requests.post(self.base, params={"EIO": "4", "transport": "polling", "sid": sid}, data=body, timeout=5)

    def ws(self, query="EIO=4&transport=websocket"):
        return websocket.create_connection(self.ws_base + "?" + query, timeout=5)

    def refused(self, query):
        try:
            self.ws(query).close()
            return False
        except websocket.WebSocketBadStatusException:
            return True

    def accepted_then_closed(self, query):
        """The official suites' `await waitFor(socket2, "close")` on a socket without an
        error listener: the handshake must complete (a refusal would be an unhandled
        `error` event in Node's ws, failing the suite), then the server closes it."""
        socket = self.ws(query)  # raises on anything but 101
        try:
            while True:
                opcode, _ = socket.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return True
        except websocket.WebSocketConnectionClosedException:
            return True
        finally:
            socket.close()


def next_message_after_probe(socket):
    """The official cases attach their message listener only after their GET or second
    WebSocket: a `3probe` that arrived before then was never seen by them."""
    message = socket.recv()
    return socket.recv() if message == "3probe" else message


def check_open_packet(text, upgrades):
    assert text.startswith("0")
    value = json.loads(text[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(value["sid"], str)
    assert value["upgrades"] == upgrades
    assert (value["pingInterval"], value["pingTimeout"], value["maxPayload"]) == (300, 200, 1000000)
