"""Connection-state recovery end to end with the official JavaScript client
(socket.io.min.js 4.8.1) in headless Chromium."""

from pathlib import Path

import pytest
import socketio
from waiting import wait_until

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"


def wait_for_script(driver, script, timeout=10):
    """Waits until `script` returns something truthy in the page, and returns it."""
    try:
        return wait_until(lambda: driver.execute_script(script), timeout, script)
    except AssertionError as error:
        raise AssertionError(f"{error}\nevents: {driver.execute_script('return window.events')}") from None


def events_of(driver, kind):
    return [e for e in driver.execute_script("return window.events") if e[0] == kind]


def whoami(driver):
    return driver.execute_async_script("const done = arguments[0]; socket.emitWithAck('whoami').then(done);")


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
def test_missed_packets_are_replayed_once_in_order(browser, recovery_testbed, transports):
    driver = browser()
    driver.get(f"{recovery_testbed.url}/recovery.html?transports={transports}")
    first = wait_for_script(driver, "return events.find(e => e[0] === 'connect')")
    assert first[2] is False  # a fresh session

    driver.execute_async_script("const done = arguments[0]; socket.emitWithAck('join', 'blue').then(done);")
    driver.execute_async_script("const done = arguments[0]; socket.emitWithAck('set data', {n: 7}).then(done);")

    sender = socketio.Client(reconnection=False)
    sender.connect(recovery_testbed.url, transports=["websocket"], wait_timeout=5)
    try:
        sender.call("emit all", "before", timeout=5)
        wait_for_script(driver, "return events.filter(e => e[0] === 'all').length === 1")

        # Cut the transport (no Socket.IO DISCONNECT): the client will reconnect in 2 s.
        driver.execute_script("socket.io.engine.close()")
        wait_for_script(driver, "return events.some(e => e[0] === 'disconnect')")
        # The server has noticed the closed transport: the socket is kept for recovery.
        wait_until(lambda: first[1] not in {s["id"] for s in sender.call("fetch sockets", timeout=5)}, 5, "the server to see the link go")
        missed = [f"missed {i}" for i in range(5)]
        for text in missed:
            sender.call("emit all", text, timeout=5)

        second = wait_for_script(driver, "return events.filter(e => e[0] === 'connect')[1]")
        # A marker sent after the reconnection comes after any duplicate would have.
        sender.call("emit all", "marker", timeout=5)
        wait_for_script(driver, "return events.some(e => e[0] === 'all' && e[1] === 'marker')")
    finally:
        sender.disconnect()

    assert second[1] == first[1]  # the same socket id
    assert second[2] is True  # socket.recovered on the client
    received = [e[1] for e in events_of(driver, "all")]
    assert received == ["before", *missed, "marker"]  # exactly the missed packets, once, in order
    offsets = [int(e[2]) for e in events_of(driver, "all")]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

    me = whoami(driver)
    assert me["recovered"] is True  # socket.recovered on the server
    assert me["id"] == first[1]
    assert "blue" in me["rooms"]  # rooms restored
    assert me["data"] == {"n": 7}  # data restored
    driver.save_screenshot(str(ARTIFACTS / f"recovery-{transports.replace(',', '-')}.png"))


def connected_with_an_offset(driver, server):
    """A page connected over WebSocket that has received one broadcast, so it holds a
    recovery offset; returns the driver and its first connect event."""
    driver.get(f"{server.url}/recovery.html?transports=websocket")
    first = wait_for_script(driver, "return events.find(e => e[0] === 'connect')")
    sender = socketio.Client(reconnection=False)
    sender.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        sender.call("emit all", "has an offset", timeout=5)
        wait_for_script(driver, "return events.filter(e => e[0] === 'all').length === 1")
    finally:
        sender.disconnect()
    return driver, first


def test_expired_session_connects_fresh(browser, recovery_testbed):
    driver, first = connected_with_an_offset(browser(), recovery_testbed)
    # Reconnect only after maxDisconnectionDuration (3 s) has passed.
    driver.execute_script("socket.io.reconnectionDelay(4500); socket.io.reconnectionDelayMax(4500); socket.io.engine.close()")
    second = wait_for_script(driver, "return events.filter(e => e[0] === 'connect')[1]", timeout=15)
    assert second[2] is False  # recovery refused: a normal new session
    assert second[1] != first[1]
    me = whoami(driver)
    assert me["recovered"] is False
    assert me["data"] is None
    driver.save_screenshot(str(ARTIFACTS / "recovery-expired.png"))


def test_a_client_disconnect_is_not_recovered(browser, recovery_testbed):
    driver, first = connected_with_an_offset(browser(), recovery_testbed)
    driver.execute_script("socket.disconnect(); setTimeout(() => socket.connect(), 200)")
    second = wait_for_script(driver, "return events.filter(e => e[0] === 'connect')[1]")
    assert second[2] is False
    assert second[1] != first[1]
