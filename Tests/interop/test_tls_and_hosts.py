"""TLS when a certificate is configured, and the allowed-hosts check."""

import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
import socketio
import websocket

from chat_support import ChatServer
from waiting import wait_until


@pytest.fixture(scope="module")
def certificate():
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    directory = Path(tempfile.mkdtemp(prefix="chat-tls-"))
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_with_a_certificate_the_chat_speaks_https_and_wss_only(certificate, monkeypatch):
    cert, key = certificate
    # python-engineio asks requests to verify with its defaults: point them at our CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    chat = ChatServer("sqlite", TLS_CERT=str(cert), TLS_KEY=str(key))
    url = chat.url.replace("http://", "https://")
    try:
        # The page, over HTTPS, checked against the certificate.
        page = requests.get(url + "/", verify=str(cert), timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
        # The official client: polling over HTTPS, then the upgrade to WSS.
        session = requests.Session()
        session.verify = str(cert)
        received = []
        # The clients' packet logs are shown if the test fails.
        client = socketio.Client(reconnection=False, http_session=session, logger=True, engineio_logger=True)
        client.on("chat message", lambda *args: received.append(args))
        # The namespace's answer waits for the upgrade (the client sends its CONNECT over the
        # WebSocket once upgraded): on a machine loaded by the run's other work, the TLS
        # handshakes of two connections can take seconds, as the ack below can.
        client.connect(url, auth={"username": "ada"}, transports=["polling", "websocket"], wait_timeout=15)
        try:
            try:
                # Generous: the ack waits for an fsync, which a machine busy writing back a
                # fresh build can stall for seconds.
                assert "id" in client.call("chat message", ("over tls", "tls-1"), timeout=15)
            except socketio.exceptions.TimeoutError:
                stored = requests.get(url + "/messages", verify=str(cert), timeout=5).json()["messages"]
                raise AssertionError(f"no ack; transport {client.transport()}, stored {stored}") from None
            assert client.transport() == "websocket"
            # Sent before its history replay ended, the client gets its own broadcast when
            # it joins the live chat, which may be after the ack.
            wait_until(lambda: received, 5, "the broadcast")
            assert received[0][0] == "over tls"
        finally:
            client.disconnect()
        # A raw WSS connection is held to the same certificate.
        ws = websocket.create_connection(
            url.replace("https", "wss") + "/socket.io/?EIO=4&transport=websocket",
            sslopt={"ca_certs": str(cert)},
            timeout=5,
        )
        assert ws.recv().startswith('0{"sid":')
        ws.close()
        # Plain HTTP to the TLS port gets no page.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(chat.url + "/", timeout=5)
    finally:
        chat.stop()


@pytest.mark.browser
def test_the_page_and_the_official_client_work_over_https_and_wss(certificate, browser, static_dir):
    from test_browser_chat import Page

    cert, key = certificate
    chat = ChatServer("sqlite", TLS_CERT=str(cert), TLS_KEY=str(key))
    try:
        # The throwaway certificate is not in Chromium's trust store.
        page = Page(browser("--ignore-certificate-errors"), chat.url.replace("http://", "https://") + "/", "ada")
        page.send("over wss")
        assert page.wait_for_messages(1) == [["ada", "over wss"]]
        assert page.driver.execute_script("return location.protocol") == "https:"
        assert page.driver.execute_script("return socket.io.engine.transport.name") == "websocket"
        page.screenshot("chat-over-tls")
    finally:
        chat.stop()


def test_a_missing_key_file_stops_the_server_at_start(certificate):
    cert, _ = certificate
    with pytest.raises(RuntimeError, match="exited"):
        ChatServer("sqlite", TLS_CERT=str(cert), TLS_KEY="/nonexistent/key.pem")


def test_only_the_allowed_hosts_are_served():
    chat = ChatServer("sqlite", ALLOWED_HOSTS="localhost, *.localhost")
    port = chat.server.port
    try:
        # By IP, the Host header is 127.0.0.1: refused, page and Engine.IO alike.
        refused = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused.status_code == 421
        handshake = requests.get(f"http://127.0.0.1:{port}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
        assert handshake.status_code == 421
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=5)
        # A rebinding page: its own host name, resolving to this server.
        assert requests.get(f"http://127.0.0.1:{port}/", headers={"Host": "evil.example"}, timeout=5).status_code == 421
        # The names on the list work, with any port.
        assert requests.get(f"http://127.0.0.1:{port}/", headers={"Host": f"localhost:{port}"}, timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/messages", headers={"Host": "chat.localhost"}, timeout=5).status_code == 200
        client = socketio.Client(reconnection=False)
        client.connect(f"http://localhost:{port}", auth={"username": "ada"}, transports=["polling", "websocket"], wait_timeout=5)
        assert "id" in client.call("chat message", ("by name", "hosts-1"), timeout=5)
        client.disconnect()
    finally:
        chat.stop()
