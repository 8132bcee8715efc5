"""chat-server started by a benchmark script on its own SQLite database, seeded with stored
messages first (while the server is stopped, after it has created the schema)."""
import os
import socket
import sqlite3
import subprocess
import time


def wait_for_port(port, process):
    for _ in range(200):
        if process.poll() is not None:
            raise SystemExit(f"chat-server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("chat-server did not start")


def start(server, env, port):
    process = subprocess.Popen([server], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process


def start_seeded(server, data_dir, port, messages, **env):
    """chat-server on 127.0.0.1:`port` with `messages` stored messages; returns the process."""
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATA_DIR=data_dir, DATABASE_URL="", **env)
    process = start(server, env, port)
    process.terminate()
    process.wait()
    with sqlite3.connect(os.path.join(data_dir, "chat.sqlite3")) as db:
        db.executemany(
            "INSERT INTO messages (client_offset, content, username) VALUES (?, ?, ?)",
            ((f"bench-{i}", f"message {i} of a long conversation", f"user{i % 50}") for i in range(messages)),
        )
    return start(server, env, port)
