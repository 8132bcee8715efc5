"""chat-server that cannot listen says why on one line, as a person would, names the flag
or variable that changes it, and exits non-zero; and it runs as many event loops as asked."""

import os
import socket
import subprocess
import tempfile

import pytest
from chat_support import ChatServer
from conftest import BIN, ROOT


def start(port, *prefix):
    """Runs chat-server on `port` until it gives up; returns its exit code and last line."""
    env = dict(
        os.environ,
        PORT=str(port),
        HOST="127.0.0.1",
        DATA_DIR=tempfile.mkdtemp(prefix="chat-startup-"),
        DATABASE_URL="",
        MIGRATIONS_DIR=str(ROOT / "migrations"),
        WEB_DIR=str(ROOT / "web"),
    )
    result = subprocess.run([*prefix, str(BIN / "chat-server")], env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return result.returncode, lines[-1] if lines else ""


def test_a_port_in_use_is_named_with_the_flag_that_changes_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, last = start(port)
    assert code != 0
    assert last == f"Error: cannot listen on 127.0.0.1:{port}: another program is using port {port}; choose another with --port or PORT"


def unprivileged_port_start():
    try:
        return int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
    except OSError:
        return 1024


@pytest.mark.skipif(unprivileged_port_start() <= 81, reason="this kernel lets anyone bind port 81")
def test_a_privileged_port_without_the_right_to_bind_it():
    # As root, the capability is taken away first: an ordinary user does not have it.
    prefix = ("setpriv", "--bounding-set", "-net_bind_service") if os.geteuid() == 0 else ()
    code, last = start(81, *prefix)
    assert code != 0
    assert last == (
        "Error: cannot listen on 127.0.0.1:81: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --port or PORT"
    )


@pytest.mark.parametrize("loops", [1, 3])
def test_event_loops_sets_the_threads_that_carry_the_connections(loops):
    chat = ChatServer("sqlite", EVENT_LOOPS=str(loops))
    try:
        pid = chat.server.process.pid
        names = [open(f"/proc/{pid}/task/{task}/comm").read().strip() for task in os.listdir(f"/proc/{pid}/task")]
        assert sum(name.startswith("NIO-SGLTN-") for name in names) == loops, names
    finally:
        chat.server.stop()


def test_event_loops_out_of_range_is_refused():
    result = subprocess.run([str(BIN / "chat-server")], env=dict(os.environ, EVENT_LOOPS="0"), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Error: --event-loops must be 1...1024" in result.stderr
