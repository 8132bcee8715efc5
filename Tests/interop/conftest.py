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
    def __init__(self, executable: str, env: dict[str, str], recovery: bool = False, port: int | None = None):
        self.recovery = recovery
        self.port = port or free_port()
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


@pytest.fixture(scope="session")
def static_dir():
    """The pages of the browser tests, with the official client bundle beside them."""
    directory = ROOT / ".test-artifacts" / "static"
    directory.mkdir(parents=True, exist_ok=True)
    bundle = Path(os.environ.get("CLIENT_BUNDLE", ROOT / ".cache" / "socket.io.min.js"))
    assert bundle.exists(), "run scripts/test.sh: it fetches socket.io.min.js"
    (directory / "socket.io.min.js").write_bytes(bundle.read_bytes())
    for page in (Path(__file__).parent / "browser").glob("*.html"):
        (directory / page.name).write_bytes(page.read_bytes())
    return directory


@pytest.fixture(scope="session")
def recovery_testbed(static_dir):
    """socketio-testbed with a 3 s maxDisconnectionDuration and a 50-packet buffer, so
    expiry and eviction can be tested."""
    server = Server(
        "socketio-testbed", {"STATIC_DIR": str(static_dir), "RECOVERY_MS": "3000", "RECOVERY_MAX_PACKETS": "50"}, recovery=True
    )
    yield server
    server.assert_alive()
    server.stop()


@pytest.fixture
def browser():
    """Headless Chromium (Debian's) driven by selenium; closes itself after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def open_browser(*extra_arguments):
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1000,800",
            '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
            *extra_arguments,
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        drivers.append(driver)
        return driver

    yield open_browser
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="session")
def strict_testbed(static_dir):
    """socketio-testbed with tight limits: 0.5 s to send a request head, 64 KiB of backlog
    for 0.5 s before a slow client is dropped."""
    server = Server(
        "socketio-testbed",
        {"STATIC_DIR": str(static_dir), "REQUEST_TIMEOUT_MS": "500", "MAX_OUTBOUND_BYTES": "65536", "SLOW_CONSUMER_TIMEOUT_MS": "500"},
        recovery=True,
    )
    yield server
    server.assert_alive()
    server.stop()
