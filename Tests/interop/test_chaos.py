"""Chaos: clients send without pause while chat-server is killed with SIGKILL and
restarted twice and MariaDB is restarted once. At the end every acknowledged message is
stored exactly once, and every client has every stored message exactly once."""

import os
import threading
import time
import uuid

import pytest
import socketio
from chat_support import ChatServer, mariadb_start, mariadb_stop
from waiting import wait_until

pytestmark = pytest.mark.chaos


class ChaosClient:
    """python-socketio with reconnection, sending like the tutorial's page: the same
    clientOffset on every retry until an ack comes, serverOffset = the last id it got."""

    def __init__(self, chat, name):
        self.name = name
        self.lock = threading.Lock()
        self.received: list[int] = []
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5, request_timeout=2)
        self.client.on("chat message", self._message)
        self.client.connect(chat.url, auth=self._auth, transports=["websocket"], wait_timeout=5)
        self.thread = threading.Thread(target=self._send_loop, daemon=True)

    def _auth(self):
        with self.lock:
            return {"username": self.name, "serverOffset": self.received[-1] if self.received else 0}

    def _message(self, text, id, meta, *offset):
        with self.lock:
            self.received.append(id)

    def _send_loop(self):
        n = 0
        while not self.stop.is_set():
            text, offset = f"{self.name} {n}", f"{self.name}-{n}"
            while not self.stop.is_set():
                try:
                    if self.client.connected:
                        self.client.call("chat message", (text, offset), timeout=2)
                        with self.lock:
                            self.acked.append(text)
                        break
                except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError, socketio.exceptions.ConnectionError):
                    pass
                time.sleep(0.05)  # the page's back-off before it sends again
            n += 1
            time.sleep(0.01)  # the sender's pace: the workload, not a wait

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.client.disconnect()


def test_chaos_kill_the_server_twice_and_restart_the_database():
    if "MARIADB_DIR" not in os.environ or os.environ.get("MARIADB_DIR") == "x":
        pytest.skip("needs the test command's throwaway MariaDB")
    chat = ChatServer("mysql")
    clients = [ChaosClient(chat, f"c{i}-{uuid.uuid4().hex[:4]}") for i in range(3)]
    for client in clients:
        client.thread.start()
    def acked_count():
        return sum(len(client.acked) for client in clients)

    def traffic_flows(more=10):
        """Waits until `more` messages are acked: each fault strikes a working chat."""
        target = acked_count() + more
        wait_until(lambda: acked_count() >= target, 30, f"{more} more acks")

    try:
        traffic_flows()
        chat.restart(kill=True)
        traffic_flows()
        mariadb_stop()
        time.sleep(1.0)  # the outage itself: the database stays away this long
        mariadb_start()
        traffic_flows()
        chat.restart(kill=True)
        traffic_flows()
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.thread.join(10)

    # Let every client catch up with what is stored.
    def caught_up():
        ids = {r["id"] for r in chat.all_rows()}  # read again: a retried insert may still commit
        return all(set(c.received) >= ids for c in clients)

    try:
        wait_until(caught_up, 20, "every client to catch up")
    except AssertionError:
        pass  # reported below, client by client
    rows = chat.all_rows()
    stored = [r["content"] for r in rows]
    ids = [r["id"] for r in rows]
    acked = [text for client in clients for text in client.acked]
    try:
        assert len(acked) > 30, "the clients hardly sent anything"
        assert len(stored) == len(set(stored)), "a message was stored twice"
        assert set(acked) <= set(stored), f"acknowledged but lost: {sorted(set(acked) - set(stored))[:5]}"
        for client in clients:
            assert sorted(client.received) == ids, f"{client.name}: missing {sorted(set(ids) - set(client.received))[:5]}, duplicates {len(client.received) - len(set(client.received))}"
    finally:
        for client in clients:
            client.client.disconnect()
        chat.stop()
    print(f"chaos: {len(acked)} acked, {len(stored)} stored, every client has all {len(ids)} once")
