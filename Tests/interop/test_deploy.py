"""The deployment files and the README's own commands: docker-compose.yml is valid (Debian's
docker-compose checks it; no Docker engine runs here), the Dockerfile builds with the
README's own script, and `scripts/run.sh` and `scripts/cluster.sh` are run as the README
gives them, on a fresh port, driven with the real client, and stopped with Ctrl-C."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from chat_support import ChatClient, connected_sockets
from conftest import free_port, free_ports
from waiting import wait_until

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid():
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is missing: scripts/test.sh installs it")
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    assert "mysql:8" in config
    assert "DATABASE_URL: mysql://chat:chatpw@mysql:3306/chat" in config
    assert "condition: service_healthy" in config
    assert "3000:3000" in config or "published: 3000" in config
    # A cluster: Redis, three nodes sharing it and the database, HAProxy in front.
    assert "image: redis:7" in config and "image: haproxy:2.6" in config
    for node in ("chat1", "chat2", "chat3"):
        assert f"  {node}:" in config
    assert config.count("REDIS_URL: redis://redis:6379") == 3


def test_the_balancer_configuration_is_valid_and_needs_no_stickiness():
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is missing: scripts/test.sh installs it"
    path = ROOT / "deploy" / "haproxy.cfg"
    result = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    text = path.read_text()
    # Round robin, no cookie and no hashing: any node serves any session's requests.
    assert "balance roundrobin" in text and "timeout tunnel" in text
    assert "cookie" not in text.split("backend nodes", 1)[1] and "hash" not in text


def test_dockerfile_builds_with_the_readme_script():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN scripts/build.sh" in dockerfile  # the same build the README's run command does
    assert "FROM swift:" in dockerfile and "FROM debian:bookworm-slim" in dockerfile
    assert "scripts/build.sh" in (ROOT / "scripts" / "run.sh").read_text()


class Readme:
    """A README command, started as a person starts it in a terminal: in a process group of
    its own, its output kept in .test-artifacts/."""

    def __init__(self, name, command, env, logs=()):
        self.logs = logs  # what else to show if it fails: the logs of what it started
        self.log_path = ROOT / ".test-artifacts" / f"{name}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=dict(os.environ, **env), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self):
        return self.log_path.read_text()

    def failure_report(self):
        report = f"the command ended with {self.process.returncode}:\n{self.output()[-3000:]}"
        for pattern in self.logs:
            for path in sorted(ROOT.glob(pattern)):
                report += f"\n--- {path.relative_to(ROOT)}:\n{path.read_text(errors='replace')[-1500:]}"
        return report

    def wait_for(self, condition, what, timeout):
        """Waits for `condition`, failing at once (with the output) if the command ends first."""

        def ready():
            assert self.process.poll() is None, self.failure_report()
            try:
                return condition()
            except (OSError, requests.RequestException):
                return False

        wait_until(ready, timeout, what)

    def interrupt(self, timeout=60):
        """Ctrl-C, to the command alone: it must stop everything it started by itself."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        finally:
            self.log.close()

    def leftovers(self):
        """Processes still in the command's group (what it started and did not stop)."""
        out = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(self.process.pid)], capture_output=True, text=True).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def kill_group(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def refuses_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


class Address:
    """What ChatClient needs of a server: its URL."""

    def __init__(self, url):
        self.url = url


# The first run builds chat-server in release mode, as the README's command does.
BUILD_TIMEOUT = 1800


def test_scripts_run_sh_serves_the_chat_and_stops_on_ctrl_c():
    port = free_port()
    data = tempfile.mkdtemp(prefix="readme-run-")
    run = Readme("readme-run", ["scripts/run.sh"], {"PORT": str(port), "DATA_DIR": data, "DATABASE_URL": ""})
    try:
        url = f"http://127.0.0.1:{port}"
        run.wait_for(lambda: requests.get(url + "/healthz", timeout=2).status_code == 200, "scripts/run.sh to serve", BUILD_TIMEOUT)
        page = requests.get(url + "/", timeout=5)
        assert page.status_code == 200 and '<script type="module" src="/js/main.js">' in page.text
        module = requests.get(url + "/js/main.js", timeout=5)
        assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
        ada, bob = ChatClient(Address(url), "ada"), ChatClient(Address(url), "bob", transports=("polling", "websocket"))
        try:
            assert "id" in ada.send("hello from the README")
            assert [row[0] for row in bob.wait_for(1)] == ["hello from the README"]
        finally:
            ada.close()
            bob.close()
        assert run.interrupt() == 0  # a graceful stop
        assert refuses_connections(port)
        assert run.leftovers() == []
    finally:
        run.kill_group()
        shutil.rmtree(data, ignore_errors=True)


def test_scripts_cluster_sh_runs_three_nodes_behind_haproxy_and_stops_on_ctrl_c():
    port = free_ports(4)  # HAProxy on PORT, the nodes on the three after it
    cluster = Readme("readme-cluster", ["scripts/cluster.sh"], {"PORT": str(port)}, logs=(".cluster/*.log",))
    try:
        url = f"http://localhost:{port}"
        for node in (1, 2, 3):
            cluster.wait_for(
                lambda node=node: requests.get(f"http://127.0.0.1:{port + node}/healthz", timeout=2).status_code == 200,
                f"node {node} to serve",
                BUILD_TIMEOUT,
            )
        cluster.wait_for(lambda: requests.get(url + "/healthz", timeout=2).status_code == 200, "HAProxy to serve", 60)
        assert "Cannot raise FD limit" not in cluster.output()
        # Polling then the upgrade, and polling only: without a cookie, their requests land
        # on every node.
        clients = [
            ChatClient(Address(url), f"user{i}", transports=("polling", "websocket") if i % 2 else ("polling",)) for i in range(6)
        ]
        try:
            for index, client in enumerate(clients):
                assert "id" in client.send(f"message {index}")
            for client in clients:
                assert sorted(row[0] for row in client.wait_for(6)) == [f"message {i}" for i in range(6)]
            # The balancer spread them over the nodes, each session held by one.
            per_node = [connected_sockets(f"http://127.0.0.1:{port + node}") for node in (1, 2, 3)]
            assert sum(per_node) == 6 and sum(1 for count in per_node if count) >= 2, per_node
        finally:
            for client in clients:
                client.close()
        assert cluster.interrupt() == 130  # stopped by Ctrl-C, as a shell reports it
        for used in (port, port + 1, port + 2, port + 3):
            assert refuses_connections(used), f"port {used} still open after Ctrl-C"
        assert cluster.leftovers() == []
    finally:
        cluster.kill_group()
