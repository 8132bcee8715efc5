"""The chat page (web/index.html) in headless Chromium with the official client: two
people chat, one disconnects and reconnects, one reloads, markup stays text, a server
restart loses and duplicates nothing, and a reconnection cut off mid-replay is recovered.
Screenshots land in .test-artifacts/. (test_browser_page.py has the page's own features.)"""

from pathlib import Path

import pytest
from chat_support import ChatServer, metric
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from waiting import wait_until

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"


class Page:
    def __init__(self, driver, url, username):
        """Opens the page at `url` and joins as `username` (url None: the page is open)."""
        self.driver = driver
        self.username = username
        if url is not None:
            driver.get(url)
        # A returning visitor's name is remembered: the page joins by itself.
        if driver.find_element(By.ID, "join").is_displayed():
            field = driver.find_element(By.ID, "username")
            field.send_keys(username)
            field.send_keys(Keys.ENTER)
        assert driver.find_element(By.ID, "me").text == username
        self.wait_for_status("connected")

    def status(self):
        return self.driver.find_element(By.ID, "status").text

    def wait_for_status(self, state, timeout=15):
        """Waits for a status that starts with `state` ("reconnecting (attempt 2)")."""
        try:
            wait_until(lambda: self.status().startswith(state), timeout, f"the status {state!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}; it stayed {self.status()!r}") from None

    def send(self, text):
        field = self.driver.find_element(By.ID, "input")
        field.send_keys(text)
        field.send_keys(Keys.ENTER)

    def messages(self):
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#messages li')].map(li => [li.querySelector('.author').textContent, li.querySelector('.text').textContent])"
        )

    def wait_for_messages(self, count, timeout=15):
        """Waits until the page shows `count` messages and returns them all: callers compare
        the whole list, so a duplicate shown before the last one fails them."""
        try:
            wait_until(lambda: len(self.messages()) >= count, timeout, f"{count} messages")
        except AssertionError as error:
            raise AssertionError(f"{error}: {len(self.messages())} shown: {self.messages()}") from None
        return self.messages()

    def toggle(self):
        self.driver.find_element(By.ID, "toggle-btn").click()

    def screenshot(self, name):
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(params=["sqlite", "mysql"])
def chat(request, static_dir):
    server = ChatServer(request.param)
    yield server
    server.stop()


def test_two_people_chat_disconnect_reconnect_reload(browser, chat):
    ada = Page(browser(), chat.url, "ada")
    bob = Page(browser(), chat.url, "bob")
    expected = []
    for i in range(3):
        ada.send(f"hello {i} from ada")
        expected.append(["ada", f"hello {i} from ada"])
        bob.send(f"hello {i} from bob")
        expected.append(["bob", f"hello {i} from bob"])
        bob.wait_for_messages(len(expected))  # keep the interleaving deterministic
    assert ada.wait_for_messages(6) == expected
    assert bob.wait_for_messages(6) == expected

    # Markup is shown as text, never run.
    ada.send("<script>window.pwned = 1</script><b>bold?</b>")
    expected.append(["ada", "<script>window.pwned = 1</script><b>bold?</b>"])
    assert bob.wait_for_messages(7) == expected
    assert bob.driver.execute_script("return window.pwned") is None
    assert bob.driver.execute_script("return document.querySelectorAll('#messages b, #messages script').length") == 0

    # Bob disconnects; Ada goes on; Bob reconnects and gets exactly what he missed, once.
    bob.toggle()
    bob.wait_for_status("disconnected")
    for i in range(4):
        ada.send(f"while bob is away {i}")
        expected.append(["ada", f"while bob is away {i}"])
    ada.wait_for_messages(len(expected))
    bob.toggle()
    bob.wait_for_status("connected")
    assert bob.wait_for_messages(len(expected)) == expected
    ada.screenshot(f"chat-ada-{chat.store}")
    bob.screenshot(f"chat-bob-{chat.store}")

    # A reload shows the latest page of the history (here all of it), as the same user.
    reloaded = Page(bob.driver, chat.url, "bob")
    assert reloaded.wait_for_messages(len(expected)) == expected


def test_the_page_works_with_per_message_deflate(browser, static_dir):
    """PER_MESSAGE_DEFLATE=1: Chromium offers permessage-deflate and the server agrees; a
    long message goes compressed both ways (the server's counters say so), short ones too."""
    chat = ChatServer("sqlite", PER_MESSAGE_DEFLATE="1")
    try:
        ada = Page(browser(), chat.url, "ada")
        bob = Page(browser(), chat.url, "bob")
        long_text = " ".join(f"word{i}" for i in range(250))  # about 2 KB
        ada.send(long_text)
        assert bob.wait_for_messages(1) == [["ada", long_text]]
        bob.send("short")
        assert ada.wait_for_messages(2) == [["ada", long_text], ["bob", "short"]]
        assert metric(chat.url, "engineio_websocket_messages_inflated_total") >= 1
        assert metric(chat.url, "engineio_websocket_messages_deflated_total") >= 1
    finally:
        chat.stop()


def test_a_server_restart_loses_and_duplicates_nothing(browser, chat):
    ada = Page(browser(), chat.url, "ada")
    bob = Page(browser(), chat.url, "bob")
    expected = []
    for i in range(3):
        ada.send(f"before {i}")
        expected.append(["ada", f"before {i}"])
    bob.wait_for_messages(3)

    chat.restart()
    # The pages reconnect by themselves; what is typed meanwhile is sent on reconnection.
    bob.send("typed during the restart")
    expected.append(["bob", "typed during the restart"])
    ada.wait_for_status("connected")
    bob.wait_for_status("connected")
    for i in range(3):
        ada.send(f"after {i}")
        expected.append(["ada", f"after {i}"])
    assert ada.wait_for_messages(len(expected)) == expected
    assert bob.wait_for_messages(len(expected)) == expected
    assert [(m["username"], m["content"]) for m in chat.all_rows()] == [tuple(e) for e in expected]
    bob.screenshot(f"chat-after-restart-{chat.store}")


def test_the_official_client_cut_off_mid_replay_is_recovered_and_rejoins(browser, chat):
    """The chat page comes back after a while away to a long run of new messages, behind a
    link that is slow and then cut while they are still arriving: the official client
    reconnects by itself, is recovered, and ends with every message once, in order, and
    the live ones after."""
    from chat_support import ChatClient
    from tcp_proxy import CuttableProxy

    rows = 1200
    # The replay takes ~8 s over this link: the cut, due once rows arrive over the WebSocket
    # (the server hands a polling client one page per GET, so the client upgrades after at
    # most one), comes in its middle even on a machine busy enough to delay the test by
    # seconds. On the WebSocket the server sees the cut at once; a polling session whose
    # GET was answered before the cut would wait for its heartbeat, and not be recovered.
    proxy = CuttableProxy(chat.server.port, bytes_per_second=12_000)
    try:
        page = Page(browser(), proxy.url, "ada")
        page.toggle()  # away: the session is closed, not kept
        page.wait_for_status("disconnected")
        bob = ChatClient(chat, "bob")
        try:
            bob.send_many([f"while away {i}" for i in range(rows)])
        finally:
            bob.close()
        page.toggle()  # back: sent everything after the newest id the page holds
        # The client names the WebSocket as soon as it has sent `5`; rows arriving after
        # that came over it, so the server has completed the upgrade.
        upgraded = "return window.socket.connected && window.socket.io.engine.transport.name === 'websocket'"
        wait_until(lambda: page.driver.execute_script(upgraded), 15, "the upgrade")
        upgraded_at = len(page.messages())
        wait_until(lambda: len(page.messages()) > max(upgraded_at, 59), 15, "rows over the WebSocket")
        shown_at_cut = len(page.messages())
        assert shown_at_cut < rows, "the replay ended before the cut"
        # The bundle's private fields are minified (its `_pid` is not there to read): a
        # recovered socket shows as `recovered` with the id it had.
        socket_id = page.driver.execute_script("return window.socket.id")
        proxy.cut()
        page.wait_for_status("reconnecting")  # the client's first attempt waits 0.5 to 1.5 s
        page.screenshot(f"chat-cut-mid-replay-{chat.store}")
        page.wait_for_status("connected")
        assert page.driver.execute_script("return window.socket.recovered") is True
        assert page.driver.execute_script("return window.socket.id") == socket_id
        expected = [["bob", f"while away {i}"] for i in range(rows)]
        assert page.wait_for_messages(rows, timeout=30) == expected
        carol = ChatClient(chat, "carol", server_offset=rows)
        try:
            carol.send("live, after the cut")
        finally:
            carol.close()
        assert page.wait_for_messages(rows + 1) == expected + [["carol", "live, after the cut"]]
        page.screenshot(f"chat-recovered-after-cut-{chat.store}")
    finally:
        proxy.close()
