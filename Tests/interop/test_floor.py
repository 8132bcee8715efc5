"""The benchmark's floor (Sources/FloorBroadcaster: what `socketio-bench fanout` needs and
nothing more) speaks enough Socket.IO for the real python-socketio client over WebSocket:
joined clients get each `chat message` once, and the sender gets its ack."""

import threading

import socketio
from conftest import Server
from waiting import wait_until


def test_the_floor_broadcasts_to_real_clients_and_acks():
    server = Server("floor-broadcaster", {})
    clients = []
    try:
        received = {name: [] for name in ("ada", "bob")}
        lock = threading.Lock()
        for name in received:
            client = socketio.Client(reconnection=False)

            def on_message(*args, name=name):
                with lock:
                    received[name].append(list(args))

            client.on("chat message", on_message)
            client.connect(server.url, transports=["websocket"], wait_timeout=10)
            clients.append(client)
        acks = []
        for text in ("first", 'with "quotes" and \\ escapes'):
            acks.append(clients[0].call("chat message", (text, f"offset-{text}"), timeout=10))
        assert acks == [None, None]  # answered, with no arguments
        wait_until(lambda: all(len(messages) == 2 for messages in received.values()), 10, "both broadcasts everywhere")
        for messages in received.values():
            assert messages == [["first", 1], ['with "quotes" and \\ escapes', 2]]
        server.assert_alive()
    finally:
        for client in clients:
            client.disconnect()
        server.stop()
