"""What HTTP compression of polling responses costs and saves: seeds the SQLite database of a
stopped chat-server with N messages, starts it, and has a raw polling client connect with
serverOffset 0 and read the replay of all N, R times for each Accept-Encoding (identity, gzip,
deflate). Prints one JSON line per coding: response bytes per replay (bodies, and bodies with
the status lines and headers) and the server's CPU time per replay (from /proc).
usage: polling_replay.py --server BIN --data-dir DIR --port PORT [--messages N] [--runs R]
"""
import argparse
import gzip
import json
import os
import zlib

import requests
from chat_process import start_seeded

DECODE = {None: lambda body: body, "gzip": gzip.decompress, "deflate": zlib.decompress}


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay(url, accept_encoding, messages):
    """One client's replay: (body bytes, bytes with status lines and headers)."""
    http = requests.Session()
    headers = {"Accept-Encoding": accept_encoding}
    base = url + "/socket.io/"
    query = {"EIO": "4", "transport": "polling"}
    opened = http.get(base, params=query, headers=headers, timeout=5)
    query["sid"] = json.loads(opened.text[1:])["sid"]
    assert http.post(base, params=query, data='40{"username":"bench","serverOffset":0}', timeout=5).text == "ok"
    body_bytes = wire_bytes = events = 0
    while events < messages:
        response = http.get(base, params=query, headers=headers, stream=True, timeout=5)
        body = response.raw.read(decode_content=False)
        body_bytes += len(body)
        wire_bytes += len(body) + 17 + sum(len(k) + len(v) + 4 for k, v in response.headers.items()) + 2
        text = DECODE[response.headers.get("content-encoding")](body).decode()
        events += sum(packet.startswith('42["chat message"') for packet in text.split("\x1e"))
    http.post(base, params=query, data="1", timeout=5)
    return body_bytes, wire_bytes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--label", default="swift")
    arguments = parser.parse_args()
    server = start_seeded(arguments.server, arguments.data_dir, arguments.port, arguments.messages)
    url = f"http://127.0.0.1:{arguments.port}"
    try:
        replay(url, "gzip", arguments.messages)  # warm-up
        for coding in ("identity", "gzip", "deflate"):
            before = cpu_seconds(server.pid)
            totals = [replay(url, coding, arguments.messages) for _ in range(arguments.runs)]
            cpu = cpu_seconds(server.pid) - before
            print(
                json.dumps(
                    {
                        "scenario": "polling-replay",
                        "server": arguments.label,
                        "accept_encoding": coding,
                        "messages": arguments.messages,
                        "runs": arguments.runs,
                        "body_bytes_per_replay": sum(t[0] for t in totals) // arguments.runs,
                        "response_bytes_per_replay": sum(t[1] for t in totals) // arguments.runs,
                        "server_cpu_ms_per_replay": round(cpu * 1000 / arguments.runs, 2),
                    }
                ),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
