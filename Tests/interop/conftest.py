"""Fixtures that start the project's own executables on free loopback ports."""

import os
import random
import socket
import subprocess
from pathlib import Path

import pytest
from waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SWIFT_BIN_DIR", ROOT / ".build" / "debug"))


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive ports that are free now, taken below the kernel's
    ephemeral range: a port from that range (what binding port 0 gives) can be handed to
    an outgoing connection (a node's to Redis or MariaDB) before the server that is to
    listen on it starts, and the server then finds it taken."""
    low, _ = _ephemeral_range()
    floor = 10_000 if low > 10_000 + 1_000 else 1_024
    while True:
        base = random.randrange(floor, low - count)
        if all(_bindable(port) for port in range(base, base + count)):
            return base


def free_port() -> int:
    return free_ports(1)


class Server:
    def __init__(self, executable: str, env: dict[str, str], recovery: bool = False, port: int | None = None):
        self.recovery = recovery
        self.framework = env.get("FRAMEWORK", "nio")  # the host it runs on (--framework)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", **env)
        log_dir = ROOT / ".test-artifacts"
        log_dir.mkdir(exist_ok=True)
        self.log = open(log_dir / f"{executable}-{self.port}.log", "w")
        self.process = subprocess.Popen([str(BIN / executable)], env=environment, stdout=self.log, stderr=subprocess.STDOUT)

        def listening():
            if self.process.poll() is not None:
                raise RuntimeError(f"{executable} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, 20, f"{executable} to listen")

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


# The hosts the conformance servers run on (`--framework`): the engine's own listener, and
# the engine mounted in a Hummingbird app and in a Vapor app. Every case of the official
# suites runs on each.
FRAMEWORKS = ["nio", "hummingbird", "vapor"]


class ConformanceCluster:
    """Three nodes of one conformance server sharing a Redis, one on each host, behind
    HAProxy in round robin without a cookie: the suite's consecutive requests land on
    different nodes, and its WebSockets on any."""

    framework = "cluster"

    def __init__(self, executable):
        from cluster_support import Balancer, RedisServer

        self.redis = RedisServer()
        self.nodes = [Server(executable, {"FRAMEWORK": framework, "REDIS_URL": self.redis.url}) for framework in FRAMEWORKS]
        self.balancer = Balancer([node.port for node in self.nodes])
        self.url = f"http://127.0.0.1:{self.balancer.port}"

    def assert_alive(self):
        for node in self.nodes:
            node.assert_alive()

    def stop(self):
        self.balancer.close()
        for node in self.nodes:
            node.stop()
        self.redis.close()


@pytest.fixture(scope="session")
def conformance_servers():
    """Starts each conformance server on each host once, when a test first asks for it."""
    servers = {}

    def server(executable, framework, **env):
        key = (executable, framework, tuple(sorted(env.items())))
        if key not in servers:
            if framework == "cluster":
                servers[key] = ConformanceCluster(executable)
            else:
                servers[key] = Server(executable, {"FRAMEWORK": framework, **env})
        return servers[key]

    yield server
    for started in servers.values():
        started.assert_alive()
        started.stop()


@pytest.fixture(params=FRAMEWORKS)
def conformance_eio(request, conformance_servers):
    """eio-conformance on one host, in the engine.io-protocol suite's configuration."""
    return conformance_servers("eio-conformance", request.param)


@pytest.fixture(params=FRAMEWORKS)
def conformance_eio_unhurried(request, conformance_servers):
    """eio-conformance on one host as the suite configures it, but pinging every 25 s: for
    the suite's cases that are not about the heartbeat and answer no ping. Against the
    suite's 300 ms + 200 ms, a machine that stalls for half a second mid-case has the session
    closed by its heartbeat (seen once in CI, in "ignores WebSocket connection with same sid
    after upgrade"), which is not what those cases test."""
    return conformance_servers("eio-conformance", request.param, PING_INTERVAL="25000")


@pytest.fixture(params=FRAMEWORKS + ["cluster"])
def conformance_sio(request, conformance_servers):
    """sio-conformance on one host, in the socket.io-protocol suite's configuration, and
    three of them behind a balancer without sticky sessions."""
    return conformance_servers("sio-conformance", request.param)


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


@pytest.fixture(scope="session", params=FRAMEWORKS)
def testbed(request):
    """socketio-testbed: the whole server API, connection-state recovery on, on each host."""
    server = Server("socketio-testbed", {"STATIC_DIR": str(ROOT / ".test-artifacts" / "static"), "FRAMEWORK": request.param}, recovery=True)
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


@pytest.fixture(scope="session", params=FRAMEWORKS)
def recovery_testbed(request, static_dir):
    """socketio-testbed with a 3 s maxDisconnectionDuration and a 50-packet buffer, so
    expiry and eviction can be tested, on each host."""
    server = Server(
        "socketio-testbed",
        {"STATIC_DIR": str(static_dir), "RECOVERY_MS": "3000", "RECOVERY_MAX_PACKETS": "50", "FRAMEWORK": request.param},
        recovery=True,
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


@pytest.fixture(scope="session", params=FRAMEWORKS)
def strict_testbed(request, static_dir):
    """socketio-testbed with tight limits: 0.5 s to send a request head, 64 KiB of backlog
    for 0.5 s before a slow client is dropped, on each host."""
    server = Server(
        "socketio-testbed",
        {
            "STATIC_DIR": str(static_dir),
            "REQUEST_TIMEOUT_MS": "500",
            "MAX_OUTBOUND_BYTES": "65536",
            "SLOW_CONSUMER_TIMEOUT_MS": "500",
            "FRAMEWORK": request.param,
        },
        recovery=True,
    )
    yield server
    server.assert_alive()
    server.stop()
