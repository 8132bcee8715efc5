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

    def __init__(self, replica_of=None):
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="cluster-redis-")
        self.url = f"redis://127.0.0.1:{self.port}"
        self.replica_of = replica_of
        self.start()

    def start(self):
        replication = ["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory]
            + replication,
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


class SentinelRedis:
    """A primary, its replica and one sentinel that watches them (Debian's redis-server and
    redis-sentinel; quorum 1, the primary down after 1 s without an answer). `url` names the
    sentinel and the primary's name, as a node's REDIS_URL."""

    name = "chat"

    def __init__(self):
        self.primary = RedisServer()
        self.replica = RedisServer(replica_of=self.primary.port)
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="cluster-sentinel-")
        path = os.path.join(self.directory, "sentinel.conf")  # the sentinel rewrites it
        with open(path, "w") as f:
            f.write(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {self.name} 127.0.0.1 {self.primary.port} 1\n"
                f"sentinel down-after-milliseconds {self.name} 1000\nsentinel failover-timeout {self.name} 3000\n"
            )
        self.process = subprocess.Popen(["redis-sentinel", path], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "redis-sentinel")
        self.url = f"redis-sentinel://127.0.0.1:{self.port}/{self.name}"

    def primary_port(self):
        """The port of the server the sentinel names as primary now."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "SENTINEL", "get-master-addr-by-name", self.name], capture_output=True, text=True, check=True
        ).stdout.split()
        return int(out[1])

    def close(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.primary.close()
        self.replica.close()


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
    HAProxy in front of them, in round robin without a cookie. With `proxied`, each node
    reaches Redis and MariaDB through proxies of its own (`proxies[i]["redis"]` and
    `["database"]`), which a test cuts to cut that node off."""

    def __init__(self, count=3, balancer=False, redis=None, proxied=False, **env):
        from tcp_proxy import CuttableProxy

        self.redis = redis or RedisServer()
        self.database = "chat_cluster_" + uuid.uuid4().hex[:10]
        mariadb_sql(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        database_url = os.environ["TEST_DATABASE_URL_BASE"] + "/" + self.database
        self.env = dict(env, DATABASE_URL=database_url, REDIS_URL=self.redis.url)
        self.nodes = []
        self.proxies = []
        for _ in range(count):
            node_env = self.env
            if proxied:
                proxies = {"redis": CuttableProxy(self.redis.port), "database": CuttableProxy(int(os.environ["MARIADB_PORT"]))}
                self.proxies.append(proxies)
                node_env = dict(
                    self.env,
                    REDIS_URL=f"redis://127.0.0.1:{proxies['redis'].port}",
                    DATABASE_URL=database_url.replace(f":{os.environ['MARIADB_PORT']}/", f":{proxies['database'].port}/"),
                )
            self.nodes.append(Server("chat-server", node_env))
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
        for proxies in self.proxies:
            for proxy in proxies.values():
                proxy.close()
        self.redis.close()
