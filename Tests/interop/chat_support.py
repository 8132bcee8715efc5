"""Helpers for the chat tests: a chat-server on SQLite or on the test command's throwaway
MariaDB, which can be stopped and started again, and a chat client."""

import os
import subprocess
import tempfile
import threading
import time
import uuid

import requests
import socketio
from conftest import ROOT, Server
from waiting import wait_until

MARIADB = str(ROOT / "scripts" / "throwaway-mariadb.sh")


def mariadb_sql(sql: str) -> str:
    return subprocess.run([MARIADB, "sql", os.environ["MARIADB_DIR"], sql], check=True, capture_output=True, text=True).stdout


def mariadb_stop():
    subprocess.run([MARIADB, "stop", os.environ["MARIADB_DIR"]], check=True)


def mariadb_start():
    subprocess.run([MARIADB, "start", os.environ["MARIADB_DIR"], os.environ["MARIADB_PORT"]], check=True)


class ChatServer:
    """chat-server with its own database; `restart()` keeps the database."""

    def __init__(self, store: str, **env):
        self.store = store
        self.env = dict(env)
        if store == "mysql":
            name = "chat_e2e_" + uuid.uuid4().hex[:10]
            mariadb_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            self.env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL_BASE"] + "/" + name
            self.database = name
        else:
            self.data_dir = tempfile.mkdtemp(prefix="chat-e2e-")
            self.env["DATA_DIR"] = self.data_dir
            self.env["DATABASE_URL"] = ""
        self.server = Server("chat-server", self.env)

    @property
    def url(self):
        return self.server.url

    def restart(self, kill=False):
        port = self.server.port
        if kill:
            self.server.process.kill()
            self.server.process.wait()
            self.server.log.close()
        else:
            self.server.stop()
        self.server = Server("chat-server", self.env, port=port)

    def stop(self):
        self.server.assert_alive()
        self.server.stop()

    def seed(self, count, text=lambda i: f"old {i}"):
        """Stores `count` rows directly (the server is stopped meanwhile), as a history."""
        self.server.stop()
        rows = [(f"seed-{i}", text(i)) for i in range(count)]
        if self.store == "mysql":
            for start in range(0, len(rows), 2000):  # in statements that fit on a command line
                values = ",".join(f"('{offset}','{content}','old')" for offset, content in rows[start : start + 2000])
                mariadb_sql(f"INSERT INTO {self.database}.messages (client_offset, content, username) VALUES {values}")
        else:
            import sqlite3

            with sqlite3.connect(os.path.join(self.data_dir, "chat.sqlite3")) as db:
                db.executemany("INSERT INTO messages (client_offset, content, username) VALUES (?, ?, 'old')", rows)
        self.restart()

    def history(self, after=0, limit=500):
        r = requests.get(self.url + "/messages", params={"after": after, "limit": limit}, timeout=5)
        r.raise_for_status()
        return r.json()

    def all_rows(self):
        rows, after = [], 0
        while True:
            page = self.history(after)
            rows += page["messages"]
            if page["next_after"] is None:
                return rows
            after = page["next_after"]


def metric(url, name):
    """A chat-server's metric `name` from its /metrics; 0 while it is absent (a counter
    appears with its first increment)."""
    text = requests.get(url + "/metrics", timeout=5).text
    line = next((line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")), None)
    return float(line.split()[-1]) if line else 0


def connected_sockets(url):
    """How many sockets a chat-server has connected, from its /metrics."""
    return int(metric(url, "socketio_sockets_connected"))


def wait_for_sockets(url, count, timeout=5):
    """Waits until the server has `count` sockets connected: it noticed a lost link, say."""
    wait_until(lambda: connected_sockets(url) == count, timeout, f"{count} sockets connected")


def in_arrival_order(client: socketio.Client):
    """python-engineio hands each message to a new thread, so handlers may see them out of
    the order they arrived in; the chat tests check that order, so this client's messages
    are handled in its read loop, one after another."""
    eio = client.eio
    trigger = eio._trigger_event

    def ordered(event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return trigger(event, *args, **kwargs)

    eio._trigger_event = ordered


class ChatClient:
    """A python-socketio client that keeps what the chat sends it and its serverOffset,
    as the tutorial's page does."""

    def __init__(self, server: ChatServer, username: str, server_offset=0, transports=("websocket",), serializer="default"):
        self.username = username
        self.received: list[tuple] = []
        self.cond = threading.Condition()
        self.client = socketio.Client(reconnection=False, serializer=serializer)
        in_arrival_order(self.client)
        self.client.on("chat message", self._on_message)
        self.client.connect(
            server.url, auth={"username": username, "serverOffset": server_offset}, transports=list(transports), wait_timeout=5
        )
        self.counter = 0
        self.tab = uuid.uuid4().hex[:8]

    def _on_message(self, text, id, meta, *offset):
        assert isinstance(meta, dict) and "username" in meta
        with self.cond:
            self.received.append((text, id, meta["username"]))
            self.cond.notify_all()

    @property
    def server_offset(self):
        return self.received[-1][1] if self.received else 0

    def next_offset(self):
        self.counter += 1
        return f"{self.tab}-{self.counter}"

    def send(self, text, offset=None, timeout=5):
        return self.client.call("chat message", (text, offset or self.next_offset()), timeout=timeout)

    def send_many(self, texts, timeout=30):
        """Sends without waiting for each ack (they are stored in that order, in group
        commits); returns the acks once all have come."""
        acks = [None] * len(texts)
        done = threading.Semaphore(0)

        def acked(index):
            def callback(*reply):
                acks[index] = reply[0] if reply else None
                done.release()

            return callback

        for index, text in enumerate(texts):
            self.client.emit("chat message", (text, self.next_offset()), callback=acked(index))
        deadline = time.monotonic() + timeout
        for _ in texts:
            assert done.acquire(timeout=max(deadline - time.monotonic(), 0)), "not every message was acked"
        return acks

    def wait_for(self, count, timeout=10):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, timeout), (len(self.received), count)
            return list(self.received)

    def close(self):
        self.client.disconnect()
