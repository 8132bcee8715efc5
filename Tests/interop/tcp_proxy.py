"""A TCP proxy in front of a server whose links the tests can cut: every connection through
it can be reset at once (no FIN, no WebSocket close), as a flaky mobile link drops. The
server-to-client direction can be throttled, so that a replay is still under way when the
link is cut."""

import socket
import struct
import threading
import time


class CuttableProxy:
    def __init__(self, target_port, bytes_per_second=None):
        self.target_port = target_port
        self.bytes_per_second = bytes_per_second
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.links: list[tuple[socket.socket, socket.socket]] = []
        self.cuts = 0
        self.holding = False  # while set, new connections are reset at once (the link is down)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.holding:
                self._reset(client)
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.links.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.bytes_per_second), daemon=True).start()

    @staticmethod
    def _pump(source, destination, rate):
        chunk = 1024 if rate else 65536
        try:
            while True:
                data = source.recv(chunk)
                if not data:
                    destination.shutdown(socket.SHUT_WR)
                    return
                destination.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)  # the link's bandwidth: what a slow network takes
        except OSError:
            return

    def cut(self, hold=False):
        """Resets every connection through the proxy, on both sides; with `hold`, the link
        stays down (new connections are reset too) until `release()`."""
        with self.lock:
            links, self.links = self.links, []
            self.cuts += 1
            self.holding = hold
        for pair in links:
            for sock in pair:
                self._reset(sock)

    def release(self):
        self.holding = False

    @staticmethod
    def _reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Wakes the pump blocked on it (a bare close would wait for that recv).
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def close(self):
        self.listener.close()
        self.cut()
