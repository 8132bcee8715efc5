"""Helpers for the cluster tests: Debian's redis-server and haproxy, and several chat-server
processes sharing one MariaDB database and one Redis, as scripts/cluster.sh runs them."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

from chat_support import mariadb_sql
from conftest import ROOT, Server, free_port
from waiting import wait_until


def wait_for_port(port, process, what, timeout=20):
    """Waits until `process` listens on `port`; fails at once if it exits."""

    def listening():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_until(listening, timeout, f"{what} to listen on port {port}")


class RedisServer:
    """A throwaway redis-server without persistence: `restart()` comes back empty, as a
    Redis that lost its data does."""

    def __init__(self):
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="cluster-redis-")
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, "redis-server")

    def stop(self):
        self.process.kill()
        self.process.wait()

    def restart(self, pause=0.0):
        self.stop()
        time.sleep(pause)  # the outage itself: Redis stays away this long
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Balancer:
    """HAProxy in front of the nodes, WebSockets tunnelled: round robin without a cookie, so
    that consecutive requests of one polling session reach different nodes (which forward
    them to the node that holds it)."""

    def __init__(self, ports):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.directory = tempfile.mkdtemp(prefix="cluster-haproxy-")
        servers = "\n".join(f"    server n{i} 127.0.0.1:{port} check inter 500" for i, port in enumerate(ports))
        config = f"""global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend chat
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option redispatch
    retries 2
{servers}
"""
        path = os.path.join(self.directory, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        self.log = open(ROOT / ".test-artifacts" / f"haproxy-{self.port}.log", "w")
        self.process = subprocess.Popen(["haproxy", "-f", path], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, "haproxy")

    def close(self):
        self.process.terminate()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class ChatCluster:
    """`count` chat-server nodes on one new MariaDB database and one Redis, and optionally
    HAProxy in front of them, in round robin without a cookie."""

    def __init__(self, count=3, balancer=False, **env):
        self.redis = RedisServer()
        self.database = "chat_cluster_" + uuid.uuid4().hex[:10]
        mariadb_sql(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        self.env = dict(env, DATABASE_URL=os.environ["TEST_DATABASE_URL_BASE"] + "/" + self.database, REDIS_URL=self.redis.url)
        self.nodes = []
        for _ in range(count):
            self.nodes.append(Server("chat-server", self.env))
        self.balancer = Balancer([node.port for node in self.nodes]) if balancer else None

    @property
    def urls(self):
        return [node.url for node in self.nodes]

    def kill(self, index):
        """SIGKILL: the node writes nothing on its way out."""
        node = self.nodes[index]
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        node.log.close()

    def rows(self):
        """Every stored (id, content), in id order, read from the database itself."""
        out = mariadb_sql(f"SELECT id, content FROM {self.database}.messages ORDER BY id")
        return [(int(line.split("\t")[0]), line.split("\t", 1)[1]) for line in out.splitlines() if line and line[0].isdigit()]

    def close(self):
        if self.balancer:
            self.balancer.close()
        for node in self.nodes:
            if node.process.poll() is None:
                node.stop()
        self.redis.close()
