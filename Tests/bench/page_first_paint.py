"""The chat page's first paint in a large room: seeds the SQLite database of a stopped
chat-server with N messages, starts it, and opens the page in headless Chromium as a
returning user (the name remembered), R times. Prints one JSON result line: the time from
navigation to the latest page shown and painted (median and worst), and how many message
elements the page holds (the cost must not grow with the room).

usage: page_first_paint.py --server BIN --data-dir DIR --port PORT --bundle FILE [--messages N] [--runs R]
"""
import argparse
import json
import statistics
import time

from chat_process import start_seeded
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="swift")
    arguments = parser.parse_args()
    server = start_seeded(arguments.server, arguments.data_dir, arguments.port, arguments.messages, CLIENT_BUNDLE=arguments.bundle)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    url = f"http://127.0.0.1:{arguments.port}/"
    try:
        driver.get(url)
        field = driver.find_element(By.ID, "username")
        field.send_keys("bench", Keys.ENTER)
        shown, painted, elements = [], [], 0
        for run in range(arguments.runs + 1):  # the first warms the caches, as a returning user's are
            driver.get(url)
            deadline = time.monotonic() + 30
            while not driver.execute_script("return performance.getEntriesByName('chat:latest-painted').length"):
                assert time.monotonic() < deadline, "the latest page was never painted"
                time.sleep(0.01)
            marks = driver.execute_script(
                "return ['chat:latest-shown', 'chat:latest-painted'].map(n => performance.getEntriesByName(n)[0].startTime)"
            )
            elements = driver.execute_script("return document.querySelectorAll('#messages li').length")
            if run > 0:
                shown.append(marks[0])
                painted.append(marks[1])
    finally:
        driver.quit()
        server.terminate()
        server.wait()
    print(
        json.dumps(
            {
                "scenario": "page",
                "server": arguments.label,
                "store": "sqlite",
                "stored_messages": arguments.messages,
                "runs": arguments.runs,
                "latest_shown_ms_median": round(statistics.median(shown), 1),
                "latest_painted_ms_median": round(statistics.median(painted), 1),
                "latest_painted_ms_worst": round(max(painted), 1),
                "message_elements": elements,
            }
        )
    )


if __name__ == "__main__":
    main()
