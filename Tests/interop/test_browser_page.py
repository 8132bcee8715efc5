"""What the chat page does for the people using it, in headless Chromium with the official
client: the latest page of a 50,000-message room first and older ones on scrolling back;
pending, sent and failed messages with a resend that stores once; timestamps; the name
remembered; who is online and who is typing; the connection state with the reconnection
attempt; keyboard-only use; phone and desktop widths. Screenshots and the time to first
paint land in .test-artifacts/."""

import json
import time

import pytest
from chat_support import ChatClient, ChatServer, mariadb_start, mariadb_stop
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_browser_chat import ARTIFACTS, Page
from waiting import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite", "mysql"])
def chat(request, static_dir):
    server = ChatServer(request.param)
    yield server
    server.stop()


@pytest.fixture
def mysql_chat(static_dir):
    server = ChatServer("mysql")
    yield server
    server.stop()


def shown_ids(page):
    return page.driver.execute_script("return [...document.querySelectorAll('#messages li')].map(li => Number(li.dataset.id))")


def test_a_room_of_50000_shows_its_latest_page_at_once_and_scrolls_back(browser, chat):
    rows = 50_000
    chat.seed(rows)
    driver = browser()
    Page(driver, chat.url, "ada")  # the first visit asks for a name
    page = Page(driver, chat.url, "ada")  # the next one remembers it, as a returning user sees
    wait_until(lambda: driver.execute_script("return performance.getEntriesByName('chat:latest-painted').length"), message="the latest page painted")
    painted = driver.execute_script("return performance.getEntriesByName('chat:latest-painted')[0].startTime")
    shown = driver.execute_script("return performance.getEntriesByName('chat:latest-shown')[0].startTime")
    ids = shown_ids(page)
    # The latest page only, in order, ending with the newest message, scrolled to it.
    assert len(ids) == 50 and ids == sorted(ids) and page.messages()[-1] == ["old", f"old {rows - 1}"]
    assert driver.execute_script("const s = document.getElementById('scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight") < 40
    page.screenshot(f"page-50000-latest-{chat.store}")
    (ARTIFACTS / f"page-50000-first-paint-{chat.store}.json").write_text(
        json.dumps({"stored_messages": rows, "latest_shown_ms": shown, "latest_painted_ms": painted, "elements": len(ids)})
    )
    # Recorded, not judged: the benchmark command measures it (Tests/bench/page_first_paint.py).
    # What makes it fast in a room of any size is checked above: the page holds one page.
    print(f"\n50,000 stored messages ({chat.store}): latest page shown {shown:.0f} ms, painted {painted:.0f} ms after navigation")

    # Scrolling back, by keyboard (Home in the focused message list), loads older pages,
    # keeping what the reader was looking at in place.
    scroller = driver.find_element(By.ID, "scroller")
    scroller.click()
    for pages in (2, 3, 4):
        # Home scrolls smoothly, and a page that arrives meanwhile moves the view: a press
        # can end short of the top. The reader presses again, as a person would, until the
        # older page shows.
        def older_page_shown(pages=pages):
            if len(shown_ids(page)) >= 50 * pages:
                return True
            ActionChains(driver).send_keys(Keys.HOME).perform()
            return False

        wait_until(older_page_shown, message=f"{pages} pages", interval=0.5)
    ids = shown_ids(page)
    assert ids == list(range(rows - len(ids) + 1, rows + 1))  # contiguous, in order, no repeats
    page.screenshot(f"page-50000-scrolled-back-{chat.store}")

    # Live messages continue from the newest the page holds: no replay of the room.
    bob = ChatClient(chat, "bob", server_offset=rows)
    try:
        bob.send("live after scrolling back")
    finally:
        bob.close()
    wait_until(lambda: page.messages()[-1] == ["bob", "live after scrolling back"], message="the live message")
    assert len(shown_ids(page)) == len(ids) + 1  # after it, nothing replayed from the room
    assert driver.execute_script("return socket.auth.serverOffset") == rows + 1
    # The newest is out of view (the reader is up in the history): the page offers a jump.
    assert driver.find_element(By.ID, "jump-btn").is_displayed()


def test_the_start_of_a_short_history_is_reached_and_said(browser, chat):
    chat.seed(120)
    page = Page(browser(), chat.url, "ada")
    wait_until(lambda: len(shown_ids(page)) == 50)
    driver = page.driver
    driver.execute_script("document.getElementById('scroller').scrollTop = 0")
    wait_until(lambda: len(shown_ids(page)) == 100, message="the second page")
    driver.execute_script("document.getElementById('scroller').scrollTop = 0")
    wait_until(lambda: driver.find_element(By.ID, "history-start").is_displayed(), message="the beginning")
    assert shown_ids(page) == list(range(1, 121))
    assert not driver.find_element(By.ID, "older-btn").is_displayed()


def outbox(page):
    return page.driver.execute_script(
        "return [...document.querySelectorAll('#outbox li')].filter(li => !li.hidden).map(li => "
        "[li.querySelector('.text').textContent, li.querySelector('.state').textContent, li.dataset.offset])"
    )


def test_messages_are_pending_then_sent_or_failed_and_a_resend_stores_once(browser, mysql_chat):
    chat = mysql_chat
    # Short ack timeouts so that the retries run out within the test.
    page = Page(browser(), chat.url + "/?ackTimeout=800&retries=1", "ada")
    page.send("all fine")
    wait_until(lambda: page.messages() == [["ada", "all fine"]])
    wait_until(lambda: page.driver.execute_script("return document.querySelector('#messages li.sent .state')?.textContent") == "✓ sent")
    assert outbox(page) == []

    mariadb_stop()
    try:
        page.send("while the database is down")
        pending = outbox(page)
        assert [entry[:2] for entry in pending] == [["while the database is down", "sending…"]]
        page.screenshot("page-message-pending")
        wait_until(lambda: outbox(page) and outbox(page)[0][1] == "not sent", timeout=10, message="the failed state")
        page.screenshot("page-message-failed")
        offset = outbox(page)[0][2]
        assert offset == pending[0][2]
    finally:
        mariadb_start()
    # Resend, by keyboard: from the message field, back to the Resend button.
    driver = page.driver
    driver.find_element(By.ID, "input").click()
    for _ in range(10):
        if driver.execute_script("return document.activeElement.textContent") == "Resend":
            break
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert driver.execute_script("return document.activeElement.textContent") == "Resend"
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_until(lambda: page.messages()[-1:] == [["ada", "while the database is down"]], timeout=20, message="the resent message")
    wait_until(lambda: outbox(page) == [], message="the outbox emptied")
    rows = chat.all_rows()
    assert [r["content"] for r in rows] == ["all fine", "while the database is down"]
    assert _client_offsets(chat).count(offset) == 1  # the resend reused the failed message's offset
    page.screenshot("page-message-resent")


def _client_offsets(chat):
    from chat_support import mariadb_sql

    return mariadb_sql(f"SELECT client_offset FROM {chat.database}.messages ORDER BY id").split()


def test_timestamps_presence_typing_and_the_remembered_name(browser, chat):
    ada = Page(browser(), chat.url, "ada")
    bob = Page(browser(), chat.url, "bob")
    for page, others in ((ada, "bob"), (bob, "ada")):
        wait_until(lambda: page.driver.find_element(By.ID, "online-count").text == "2 online", message="2 online")
    ada.driver.find_element(By.ID, "online-count").click()
    assert ada.driver.find_element(By.ID, "online-list").text.split("\n") == ["ada (you)", "bob"]

    # Timestamps: the server's created_at, on live and history messages alike.
    ada.send("what time is it?")
    bob.wait_for_messages(1)
    stored = chat.history()["messages"][0]["created_at"]
    assert bob.driver.execute_script("return document.querySelector('#messages li time').dateTime") == stored
    assert bob.driver.execute_script("return document.querySelector('#messages li time').textContent") != ""

    # Typing: bob types without sending; ada sees it, and it is never stored.
    bob.driver.find_element(By.ID, "input").send_keys("I am thinking")
    wait_until(lambda: ada.driver.find_element(By.ID, "typing").text == "bob is typing…", message="the typing line")
    ada.screenshot(f"page-presence-typing-{chat.store}")
    wait_until(lambda: ada.driver.find_element(By.ID, "typing").text == "", timeout=6, message="the typing line to clear")
    assert [m["content"] for m in chat.history()["messages"]] == ["what time is it?"]

    # Bob leaves and comes back: ada's list follows.
    bob.toggle()
    wait_until(lambda: ada.driver.find_element(By.ID, "online-count").text == "1 online", message="bob gone")
    bob.toggle()
    wait_until(lambda: ada.driver.find_element(By.ID, "online-count").text == "2 online", message="bob back")

    # A reload keeps the name and shows the history with its times.
    again = Page(ada.driver, chat.url, "ada")
    assert not again.driver.find_element(By.ID, "join").is_displayed()
    assert again.wait_for_messages(1) == [["ada", "what time is it?"]]
    assert again.driver.execute_script("return document.querySelector('#messages li time').dateTime") == stored
    # The other tab's connection went with the reload; the new one is counted once.
    wait_until(lambda: bob.driver.find_element(By.ID, "online-count").text == "2 online", message="2 online after reload")
    bob.driver.find_element(By.ID, "online-count").click()
    assert bob.driver.find_element(By.ID, "online-list").text.split("\n") == ["ada", "bob (you)"]


def test_typing_and_presence_never_reach_a_recovered_client_or_the_database(browser, chat):
    """Typing is volatile: a client recovered after a cut gets the chat messages it missed
    and none of the typing; presence is asked for again on every connection."""
    from tcp_proxy import CuttableProxy

    proxy = CuttableProxy(chat.server.port)
    try:
        bob = Page(browser(), proxy.url, "bob")
        ada = Page(browser(), chat.url, "ada")
        wait_until(lambda: bob.driver.find_element(By.ID, "online-count").text == "2 online")
        # A client recovers from the offset of the last event it got: bob needs one (presence
        # changes may all have come in the snapshot, an ack, which carries none).
        ada.send("before")
        assert bob.wait_for_messages(1) == [["ada", "before"]]
        bob.driver.execute_script("window.typingSeen = 0; socket.on('typing', () => window.typingSeen++)")
        ada.driver.find_element(By.ID, "input").send_keys("x")
        wait_until(lambda: bob.driver.execute_script("return window.typingSeen") == 1, message="typing live")
        socket_id = bob.driver.execute_script("return socket.id")  # (the bundle's `_pid` is minified away)
        proxy.cut(hold=True)
        bob.wait_for_status("reconnecting")
        ada.driver.find_element(By.ID, "input").send_keys(Keys.ENTER)  # sends "x"
        time.sleep(2.1)  # protocol time: the page announces typing at most every 2 s
        ada.driver.find_element(By.ID, "input").send_keys("more typing")
        carol = ChatClient(chat, "carol")  # joins while bob is away
        try:
            wait_until(
                lambda: "carol" in ada.driver.execute_script("return document.getElementById('online-list').textContent"),
                message="carol's arrival announced",
            )
            proxy.release()
            bob.wait_for_status("connected", timeout=20)
            assert bob.driver.execute_script("return [socket.recovered, socket.id]") == [True, socket_id]
            assert bob.wait_for_messages(2) == [["ada", "before"], ["ada", "x"]]
            # Sent live after the recovery, so it follows anything the recovery replayed.
            carol.send("marker")
            assert bob.wait_for_messages(3) == [["ada", "before"], ["ada", "x"], ["carol", "marker"]]
            assert bob.driver.execute_script("return window.typingSeen") == 1
            wait_until(lambda: bob.driver.find_element(By.ID, "online-count").text == "3 online", message="carol seen")
        finally:
            carol.close()
        wait_until(lambda: bob.driver.find_element(By.ID, "online-count").text == "2 online", message="carol gone")
        assert [m["content"] for m in chat.history()["messages"]] == ["before", "x", "marker"]
    finally:
        proxy.close()


def test_connection_state_reads_at_a_glance_and_the_page_works_by_keyboard_alone(browser, static_dir):
    chat = ChatServer("sqlite")
    try:
        driver = browser()
        driver.get(chat.url)
        # Keyboard only: the name field has focus; Enter joins; the message field has focus.
        assert driver.execute_script("return document.activeElement.id") == "username"
        ActionChains(driver).send_keys("kim", Keys.ENTER).perform()
        page = Page(driver, None, "kim")
        assert driver.execute_script("return document.activeElement.id") == "input"
        ActionChains(driver).send_keys("typed, never clicked", Keys.ENTER).perform()
        wait_until(lambda: page.messages() == [["kim", "typed, never clicked"]])

        def tab_to(element_id):
            for _ in range(15):
                if driver.execute_script("return document.activeElement.id") == element_id:
                    return
                ActionChains(driver).send_keys(Keys.TAB).perform()
            raise AssertionError(f"{element_id} is not reachable with Tab")

        tab_to("toggle-btn")
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        page.wait_for_status("disconnected")
        page.screenshot("page-state-disconnected")
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        page.wait_for_status("connected")
        tab_to("online-count")  # the presence list opens from the keyboard too
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        # Filled when the server answers the page's `online` request, sent on connecting.
        wait_until(lambda: driver.find_element(By.ID, "online-list").text == "kim (you)")
        tab_to("scroller")  # the message list scrolls with the arrow keys once focused

        # The server goes away: the page says it is reconnecting, and which attempt it is on.
        port = chat.server.port
        chat.server.stop()
        page.wait_for_status("reconnecting")

        def attempt():
            status = page.status()
            number = status.removeprefix("reconnecting (attempt ").removesuffix(")")
            return int(number) if status.startswith("reconnecting (attempt ") and number.isdigit() else 0

        # A second attempt or later: the server may take seconds to stop (stop() gives it 5 s
        # before SIGKILL), and the page goes on trying meanwhile.
        wait_until(lambda: attempt() >= 2, 20, f"a second attempt or later; the status is {page.status()!r}")
        page.screenshot("page-state-reconnecting")
        chat.server = type(chat.server)("chat-server", chat.env, port=port)
        page.wait_for_status("connected", timeout=20)
        page.screenshot("page-state-connected")
    finally:
        chat.stop()


@pytest.mark.parametrize("width,height,name", [(375, 740, "phone"), (1280, 800, "desktop")])
def test_the_layout_fits_a_phone_and_a_desktop(browser, static_dir, width, height, name):
    chat = ChatServer("sqlite")
    try:
        chat.seed(30, text=lambda i: f"message {i} " + "with some longer words " * (i % 4))
        driver = browser(f"--window-size={width},{height}")
        driver.set_window_size(width, height)
        page = Page(driver, chat.url, "a-rather-long-username-for-a-phone")
        page.send("a message of my own")
        wait_until(lambda: page.messages()[-1] == ["a-rather-long-username-for-a-phone", "a message of my own"])
        view_width, view_height, page_width = driver.execute_script("return [innerWidth, innerHeight, document.documentElement.scrollWidth]")
        assert page_width <= view_width, f"the page scrolls sideways: {page_width} > {view_width}"
        for element_id in ("toggle-btn", "input", "status", "online-count"):
            box = driver.execute_script(f"return document.getElementById('{element_id}').getBoundingClientRect().toJSON()")
            assert 0 <= box["left"] and box["right"] <= view_width + 1 and 0 <= box["top"] and box["bottom"] <= view_height + 1, (element_id, box)
        page.screenshot(f"page-layout-{name}")
    finally:
        chat.stop()


def test_a_message_not_yet_stored_survives_a_reload_and_is_stored_once(browser, static_dir):
    chat = ChatServer("sqlite")
    try:
        page = Page(browser(), chat.url, "ada")
        page.toggle()  # offline: what is typed now waits, pending
        page.wait_for_status("disconnected")
        page.send("typed offline, then the tab was reloaded")
        pending = outbox(page)
        assert [entry[:2] for entry in pending] == [["typed offline, then the tab was reloaded", "sending…"]]
        again = Page(page.driver, chat.url, "ada")  # the reload connects, and sends it again
        wait_until(lambda: again.messages() == [["ada", "typed offline, then the tab was reloaded"]], message="the message stored")
        wait_until(lambda: outbox(again) == [], message="the outbox emptied")
        again.send("and one more")
        wait_until(lambda: again.messages()[-1:] == [["ada", "and one more"]])
        rows = chat.all_rows()
        assert [r["content"] for r in rows] == ["typed offline, then the tab was reloaded", "and one more"]
        # The reload kept the tab's id and counter: the next offset did not collide.
        offsets = again.driver.execute_script("return [sessionStorage.getItem('chat.tab'), sessionStorage.getItem('chat.counter')]")
        assert pending[0][2] == f"{offsets[0]}-0" and offsets[1] == "2"
        again.screenshot("page-outbox-after-reload")
    finally:
        chat.stop()
