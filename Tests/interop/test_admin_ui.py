"""The Socket.IO admin UI's protocol (@socket.io/admin-ui) on chat-server, with python-socketio
as the admin client, as python-socketio's own admin tests drive the reference: on one node,
and on three nodes of a Redis cluster, where every node reports and commands reach sockets
on every node."""

import json
import threading

import pytest
import requests
import socketio
import websocket
from chat_support import ChatServer
from cluster_support import ChatCluster
from eio_raw import Polling, ws_url
from waiting import wait_until

# "s3cret" hashed with bcrypt at cost 4 (as `htpasswd -bnBC 4` makes it): the server checks
# it with libxcrypt, on a thread pool.
PASSWORD_HASH = "$2b$04$5NDorK4KSAwgwlgXsYmJFOkx4pnwoXziBzXk/ZNOUxHQm5vmI5GQS"
CREDENTIALS = {"username": "admin", "password": "s3cret"}
UI_ORIGIN = "https://admin.socket.io"


class Admin:
    """An admin client in /admin that keeps every report it is sent, in order."""

    def __init__(self, url, auth=CREDENTIALS, transports=("websocket",)):
        self.events: list[tuple] = []
        self.cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._on_event, namespace="/admin")
        # On WebSocket from the start: an admin still polling would count among the polling
        # clients of the statistics it reads.
        self.client.connect(url, namespaces=["/admin"], auth=auth, transports=list(transports), wait_timeout=5)

    def _on_event(self, name, *arguments):
        with self.cond:
            self.events.append((name, *arguments))
            self.cond.notify_all()

    def wait_for(self, name, where=lambda *arguments: True, timeout=10):
        """The first `name` report whose arguments satisfy `where`."""

        def found():
            return next((event[1:] for event in self.events if event[0] == name and where(*event[1:])), None)

        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout), f"no {name} report; got {[e[0] for e in self.events]}"
            return found()

    def emit(self, command, *arguments):
        self.client.emit(command, arguments, namespace="/admin")

    def close(self):
        self.client.disconnect()


class User:
    """A chat client that keeps what it is sent, by event name."""

    def __init__(self, url, name, transports=("websocket",)):
        self.events: list[tuple] = []
        self.cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._on_event)
        self.client.connect(url, auth={"username": name}, transports=list(transports), wait_timeout=5)
        self.sid = self.client.get_sid()

    def _on_event(self, name, *arguments):
        with self.cond:
            self.events.append((name, *arguments))
            self.cond.notify_all()

    def wait_for(self, name, timeout=10):
        with self.cond:
            assert self.cond.wait_for(lambda: any(e[0] == name for e in self.events), timeout), f"no {name}"
            return next(e[1:] for e in self.events if e[0] == name)


@pytest.fixture
def node():
    server = ChatServer("sqlite", ADMIN_UI_USER="admin", ADMIN_UI_PASSWORD_HASH=PASSWORD_HASH)
    yield server
    server.server.stop()


def test_the_admin_ui_on_one_node(node):
    ada = User(node.url, "ada")
    bob = User(node.url, "bob", transports=("polling",))
    admin = Admin(node.url)
    try:
        session = admin.wait_for("session")[0]
        features = admin.wait_for("config")[0]["supportedFeatures"]
        assert set(features) == {"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}
        sockets = admin.wait_for("all_sockets")[0]
        by_id = {socket["id"]: socket for socket in sockets}
        assert {ada.sid, bob.sid} <= set(by_id) and len(sockets) == 3  # and the admin's own
        assert by_id[ada.sid]["transport"] == "websocket" and by_id[bob.sid]["transport"] == "polling"
        assert by_id[ada.sid]["nsp"] == "/" and by_id[ada.sid]["rooms"][0] == ada.sid
        assert by_id[ada.sid]["handshake"]["address"] == "127.0.0.1"
        # (A sample taken while the admin connected may count its connection but not yet its
        # socket: a later one counts both.)
        stats = admin.wait_for("server_stats", lambda stats: {"name": "/admin", "socketsCount": 1} in stats["namespaces"])[0]
        assert stats["clientsCount"] == 3 and stats["pollingClientsCount"] == 1
        assert {"name": "/", "socketsCount": 2} in stats["namespaces"]
        assert stats["pid"] > 0 and stats["hostname"] and stats["serverId"].endswith(f"#{stats['pid']}")

        # Live: a message is received from Ada and sent to both (the chat's broadcast).
        ada.client.call("chat message", ("hello admin", "ada-1"), timeout=5)
        received = admin.wait_for("event_received", lambda nsp, sid, args, time: sid == ada.sid and args[0] == "chat message")
        assert received[2][:3] == ["chat message", "hello admin", "ada-1"] and received[3].endswith("Z")
        admin.wait_for("event_sent", lambda nsp, sid, args, time: sid == bob.sid and args[:2] == ["chat message", "hello admin"])
        # Aggregated events: the traffic counted between two samples.
        admin.wait_for("server_stats", lambda stats: any(e["type"] == "packetsIn" for e in stats["aggregatedEvents"]))

        # Commands: an emit to one socket, a room joined and used, a disconnection.
        admin.emit("emit", "/", ada.sid, "notice", {"from": "the admin"})
        assert ada.wait_for("notice")[0] == {"from": "the admin"}
        admin.emit("join", "/", "moderators", bob.sid)
        admin.wait_for("room_joined", lambda nsp, room, sid, time: (room, sid) == ("moderators", bob.sid))
        admin.emit("emit", "/", "moderators", "memo", "for moderators")
        assert bob.wait_for("memo")[0] == "for moderators"
        admin.emit("leave", "/", "moderators", bob.sid)
        admin.wait_for("room_left", lambda nsp, room, sid, time: (room, sid) == ("moderators", bob.sid))
        admin.emit("_disconnect", "/", False, ada.sid)
        admin.wait_for("socket_disconnected", lambda nsp, sid, reason, time: sid == ada.sid and reason == "server namespace disconnect")
        wait_until(lambda: not ada.client.connected, 5, "Ada disconnected")

        # A polling socket's upgrade is reported. Driven by hand, so that the socket surely
        # connects before the upgrade (python-socketio may upgrade first).
        carol = Polling(node.url, path="/socket.io/")
        carol.handshake()
        carol.post('40{"username":"carol"}')
        carol_sid = json.loads(next(p for p in carol.get_packets() if p.startswith("40"))[2:])["sid"]
        admin.wait_for("socket_connected", lambda socket, time: socket["id"] == carol_sid and socket["transport"] == "polling")
        upgrade = websocket.create_connection(ws_url(node.url, carol.sid, path="/socket.io/"), timeout=5)
        upgrade.send("2probe")
        assert upgrade.recv() == "3probe"
        upgrade.send("5")
        admin.wait_for("socket_updated", lambda update: update == {"id": carol_sid, "nsp": "/", "transport": "websocket"})
        upgrade.close()

        # The session id lets the UI back in without the password.
        again = Admin(node.url, auth={"sessionId": session})
        again.wait_for("config")
        again.close()
    finally:
        admin.close()
        for user in (ada, bob):
            user.client.disconnect()


def test_wrong_credentials_are_refused(node):
    for auth in (None, {"username": "admin", "password": "guess"}, {"username": "root", "password": "s3cret"}, {"sessionId": "guess"}):
        with pytest.raises(socketio.exceptions.ConnectionError):
            Admin(node.url, auth=auth)


def test_the_hosted_uis_origin_may_reach_the_admin_namespace_only(node):
    """CORS lets admin.socket.io in, with credentials, as the reference's docs configure it;
    a page of that origin is refused every namespace but /admin."""
    handshake = requests.get(node.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": UI_ORIGIN}, timeout=5)
    assert handshake.status_code == 200
    assert handshake.headers["access-control-allow-origin"] == UI_ORIGIN
    assert handshake.headers["access-control-allow-credentials"] == "true"
    other = requests.get(node.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://elsewhere.example"}, timeout=5)
    assert other.status_code == 403

    # Over polling: websocket-client adds an Origin of its own beside the one given.
    page = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        page.connect(node.url, headers={"Origin": UI_ORIGIN}, auth={"username": "mallory"}, transports=["polling"], wait_timeout=5)
    admin = socketio.Client(reconnection=False)
    admin.connect(node.url, headers={"Origin": UI_ORIGIN}, namespaces=["/admin"], auth=CREDENTIALS, transports=["polling"], wait_timeout=5)
    admin.disconnect()


def test_without_credentials_there_is_no_admin_namespace():
    server = ChatServer("sqlite")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            Admin(server.url)
    finally:
        server.server.stop()


def test_the_asyncio_client_as_admin_in_production_mode():
    """python-socketio's AsyncClient over polling, against a read-only production-mode admin:
    counts only, and no commands."""
    import asyncio

    server = ChatServer("sqlite", ADMIN_UI_USER="admin", ADMIN_UI_PASSWORD="s3cret", ADMIN_UI_MODE="production", ADMIN_UI_READONLY="1")

    async def run():
        ada = User(server.url, "ada")
        client = socketio.AsyncClient(reconnection=False)
        events = asyncio.Queue()

        @client.on("*", namespace="/admin")
        async def any_event(name, *arguments):
            await events.put((name, *arguments))

        await client.connect(server.url, namespaces=["/admin"], auth=CREDENTIALS, transports=["polling"], wait_timeout=5)
        names = []
        while "server_stats" not in names or "config" not in names:
            event = await asyncio.wait_for(events.get(), 10)
            names.append(event[0])
            if event[0] == "config":
                assert event[1] == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
            if event[0] == "server_stats":
                assert event[1]["clientsCount"] == 2 and event[1]["pollingClientsCount"] == 1
        await client.emit("_disconnect", ("/", False, ada.sid), namespace="/admin")
        ada.client.call("chat message", ("still here", "ada-1"), timeout=5)
        assert ada.client.connected
        await client.disconnect()
        ada.client.disconnect()
        assert set(names) <= {"session", "config", "server_stats"}, names

    try:
        asyncio.run(run())
    finally:
        server.server.stop()


@pytest.mark.cluster
def test_the_admin_ui_across_three_nodes():
    """Every node reports to an admin connected to any one; its commands reach sockets on
    every node; all_sockets gathers them all."""
    cluster = ChatCluster(count=3, ADMIN_UI_USER="admin", ADMIN_UI_PASSWORD="s3cret")
    try:
        users = [User(url, name) for url, name in zip(cluster.urls, ("ada", "bob", "cy"))]
        watcher = Admin(cluster.urls[0])
        # Three nodes, three serverIds, each counting its own sockets: once every node's
        # reports arrive, the cluster has formed (nodes find each other by heartbeat).
        servers = {}
        # (the admin is on node 0; a sample taken while it connected may not count it yet)
        wait_until(
            lambda: servers.update({e[1]["serverId"]: e[1] for e in list(watcher.events) if e[0] == "server_stats"})
            or sorted(s["clientsCount"] for s in servers.values()) == [1, 1, 2],
            10,
            "server_stats from three nodes",
        )
        # all_sockets gathers every node's sockets, once each node counts the others among
        # the live ones (a node that joined a moment ago is asked only from then on).
        def every_node_answers():
            probe = Admin(cluster.urls[0])
            ids = {s["id"] for s in probe.wait_for("all_sockets")[0]}
            probe.close()
            return ids if {user.sid for user in users} <= ids else None

        ids = wait_until(every_node_answers, 15, "all_sockets from every node", interval=0.5)
        assert watcher.client.get_sid("/admin") in ids
        watcher.close()
        admin = Admin(cluster.urls[0])

        # Reports from another node: a socket connecting on node 2, and the chat's traffic.
        dee = User(cluster.urls[2], "dee")
        admin.wait_for("socket_connected", lambda socket, time: socket["id"] == dee.sid)
        users[1].client.call("chat message", ("from node 1", "bob-1"), timeout=5)
        admin.wait_for("event_received", lambda nsp, sid, args, time: sid == users[1].sid and args[1] == "from node 1")
        admin.wait_for("event_sent", lambda nsp, sid, args, time: sid == dee.sid and args[1] == "from node 1")

        # Commands reach the other nodes' sockets.
        admin.emit("emit", "/", users[1].sid, "notice", "to node 1")
        assert users[1].wait_for("notice")[0] == "to node 1"
        admin.emit("join", "/", "night-shift", users[2].sid)
        admin.wait_for("room_joined", lambda nsp, room, sid, time: (room, sid) == ("night-shift", users[2].sid))
        admin.emit("emit", "/", "night-shift", "memo", "to the room")
        assert users[2].wait_for("memo")[0] == "to the room"
        admin.emit("_disconnect", "/", False, dee.sid)
        wait_until(lambda: not dee.client.connected, 5, "Dee disconnected by the admin on node 0")
        admin.wait_for("socket_disconnected", lambda nsp, sid, reason, time: sid == dee.sid)

        # A session from node 0 lets the UI in on node 1.
        session = admin.wait_for("session")[0]
        elsewhere = Admin(cluster.urls[1], auth={"sessionId": session})
        elsewhere.wait_for("config")
        elsewhere.close()
        admin.close()
        for user in users:
            user.client.disconnect()
    finally:
        cluster.close()
