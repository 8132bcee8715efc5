"""An admin UI for the benchmark: python-socketio in chat-server's /admin namespace, on
WebSocket, counting the reports it is sent until SIGTERM; then prints the counts as JSON.
Prints "watching" once it has its config, so that the benchmark starts only then."""

import collections
import json
import signal
import sys
import threading

import socketio

url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
counts = collections.Counter()
configured = threading.Event()
stop = threading.Event()
client = socketio.Client(reconnection=False)


@client.on("*", namespace="/admin")
def report(name, *arguments):
    counts[name] += 1
    if name == "config":
        configured.set()


signal.signal(signal.SIGTERM, lambda *_: stop.set())
client.connect(url, namespaces=["/admin"], auth={"username": user, "password": password}, transports=["websocket"], wait_timeout=10)
if not configured.wait(10):
    sys.exit("no config from the server")
print("watching", flush=True)
stop.wait()
client.disconnect()
print(json.dumps(dict(counts), sort_keys=True), flush=True)
