"""Fixtures that start the project's own executables on free loopback ports."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SWIFT_BIN_DIR", ROOT / ".build" / "debug"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, executable: str, env: dict[str, str], recovery: bool = False):
        self.recovery = recovery
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", **env)
        log_dir = ROOT / ".test-artifacts"
        log_dir.mkdir(exist_ok=True)
        self.log = open(log_dir / f"{executable}-{self.port}.log", "w")
        self.process = subprocess.Popen([str(BIN / executable)], env=environment, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{executable} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{executable} did not start listening")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def assert_alive(self):
        assert self.process.poll() is None, "the server crashed"


@pytest.fixture(scope="session")
def eio_server():
    """The engine.io-protocol suite's reference configuration: an echo server with
    pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 and CORS origin *."""
    server = Server("eio-conformance", {})
    yield server
    server.assert_alive()
    server.stop()


@pytest.fixture(scope="session")
def chat_server():
    """chat-server with its defaults (same-origin CORS)."""
    server = Server("chat-server", {})
    yield server
    server.assert_alive()
    server.stop()


@pytest.fixture(scope="session")
def sio_server():
    """sio-conformance: the socket.io-protocol suite's reference configuration."""
    server = Server("sio-conformance", {})
    yield server
    server.assert_alive()
    server.stop()


@pytest.fixture(scope="session")
def testbed():
    """socketio-testbed: the whole server API, connection-state recovery on."""
    server = Server("socketio-testbed", {"STATIC_DIR": str(ROOT / ".test-artifacts" / "static")}, recovery=True)
    yield server
    server.assert_alive()
    server.stop()
