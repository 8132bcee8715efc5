"""The samples of the DocC articles are the code they show, and they run: the README's first
example (Sources/HummingbirdSample, Socket.IO in a Hummingbird app behind the app's
authentication) and Sources/VaporSample (the same in a Vapor app). For each: the app's own
route and Socket.IO on one port, the app's middleware deciding both, the user it
established reaching the socket's handshake, with the real python-socketio clients
(threaded and asyncio, polling and WebSocket); SIGTERM stops it cleanly."""

import asyncio
import re
import signal

import pytest
import requests
import socketio
import websocket
from conftest import ROOT, Server
from eio_raw import GOING_AWAY, recv_close_code
from waiting import wait_until

SOURCES = ROOT / "Sources"


def shown(path, marker):
    code = path.read_text()
    return code[code.index(f"// {marker} begin\n") + len(f"// {marker} begin\n") : code.index(f"// {marker} end")]


def swift_blocks(path):
    return re.findall(r"```swift\n(.*?)```\n", path.read_text(), re.S)


def test_the_readme_and_the_articles_show_the_samples_as_they_are():
    hummingbird = shown(SOURCES / "HummingbirdSample" / "main.swift", "README")
    blocks = swift_blocks(ROOT / "README.md")
    assert blocks and blocks[0] == hummingbird, "the README's first Swift example is not Sources/HummingbirdSample/main.swift"
    article = SOURCES / "SocketIOHummingbird" / "SocketIOHummingbird.docc" / "MountingInHummingbird.md"
    assert swift_blocks(article) == [hummingbird], "the Hummingbird article's app is not the sample"
    vapor = shown(SOURCES / "VaporSample" / "main.swift", "Article")
    article = SOURCES / "SocketIOVapor" / "SocketIOVapor.docc" / "MountingInVapor.md"
    assert swift_blocks(article) == [vapor], "the Vapor article's app is not the sample"


@pytest.fixture(params=["socketio-hummingbird-sample", "socketio-vapor-sample"])
def sample(request):
    server = Server(request.param, {})
    yield server
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0  # the services stop in order, cleanly
    server.log.close()


def test_on_sigterm_every_websocket_is_closed_with_a_close_frame(sample):
    """A graceful stop ends each session as the engine's own shutdown does ("server
    shutting down": a close frame, after which the clients reconnect), not with the
    connection cut when the framework's wait for its connections runs out."""
    sockets = []
    for name in ("ada", "bob"):
        ws = websocket.create_connection(
            sample.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", header=[f"Authorization: Bearer {name}"], timeout=10
        )
        assert ws.recv().startswith('0{"sid":')
        ws.send("40")
        wait_until(lambda ws=ws: ws.recv().startswith("40{"), 5, "the namespace's answer")
        sockets.append(ws)
    sample.process.send_signal(signal.SIGTERM)
    for ws in sockets:
        assert recv_close_code(ws) == GOING_AWAY
    assert sample.process.wait(timeout=20) == 0


def test_the_app_and_socket_io_share_a_port_and_the_apps_authentication(sample):
    assert requests.get(sample.url + "/hello", timeout=5).status_code == 401
    hello = requests.get(sample.url + "/hello", headers={"Authorization": "Bearer ada"}, timeout=5)
    assert hello.status_code == 200 and hello.text == "Hello, ada, from the app's own route\n"
    # The middleware refuses Socket.IO without a user too: no session is opened.
    refused = requests.get(sample.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert refused.status_code == 401
    for transports in (["websocket"], ["polling"]):
        with pytest.raises(socketio.exceptions.ConnectionError):
            socketio.Client(reconnection=False).connect(sample.url, transports=transports, wait_timeout=5)

    clients, inboxes = [], []
    try:
        for name, transports in (("ada", ["polling", "websocket"]), ("bob", ["websocket"])):
            client = socketio.Client(reconnection=False)
            inbox = []
            client.on("welcome", lambda user, inbox=inbox: inbox.append(("welcome", user)))
            client.on("chat message", lambda *args, inbox=inbox: inbox.append(tuple(args)))
            client.connect(sample.url, headers={"Authorization": f"Bearer {name}"}, transports=transports, wait_timeout=5)
            clients.append(client)
            inboxes.append(inbox)
        clients[0].emit("chat message", "hi from ada")
        for inbox in inboxes:
            wait_until(lambda inbox=inbox: ("ada", "hi from ada") in inbox, 5, "ada's message, with the user the middleware found")
        assert [inboxes[0][0], inboxes[1][0]] == [("welcome", "ada"), ("welcome", "bob")]
        assert clients[0].transport() in ("polling", "websocket")
    finally:
        for client in clients:
            client.disconnect()


def test_the_asyncio_client_upgrades_through_the_apps_middleware(sample):
    async def round_trip():
        client = socketio.AsyncClient(reconnection=False)
        welcomed = asyncio.get_running_loop().create_future()
        client.on("welcome", lambda user: welcomed.set_result(user))
        await client.connect(sample.url, headers={"Authorization": "Bearer carol"}, wait_timeout=5)
        try:
            assert await asyncio.wait_for(welcomed, 5) == "carol"
            deadline = asyncio.get_running_loop().time() + 5
            while client.transport() != "websocket" and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)  # a condition checked again, not a guess
            return client.transport()
        finally:
            await client.disconnect()

    assert asyncio.run(round_trip()) == "websocket"
