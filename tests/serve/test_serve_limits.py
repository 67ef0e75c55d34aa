"""The service against slow clients and loosely typed numbers (issue 20), on a real loopback server.

Timeouts are made small (0.5 s) through the config; each slow client is one real socket that sends
a byte at a time, and the test only checks that the server gave up on it (socket reads are bounded
by a 10 s timeout, so a server that never gives up fails the test instead of hanging it).
"""

import dataclasses
import socket
import time

import httpx
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.serve.app import create_app, serving

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})
SMALL = 0.5  # seconds: header and body timeouts in these tests


@pytest.fixture
def url(small_config, push_version):
    push_version(small_config, TRENDS)
    rerank = dataclasses.replace(small_config.rerank, header_timeout=SMALL, body_timeout=SMALL)
    with serving(create_app(dataclasses.replace(small_config, rerank=rerank))) as base:
        yield base


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _trickle(sock: socket.socket, data: bytes, seconds: float) -> bool:
    """Send ``data`` a byte at a time for at most ``seconds``; False once the server closed on us."""
    end = time.monotonic() + seconds
    for byte in data:
        if time.monotonic() > end:
            return True
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return False
        time.sleep(0.05)
    return True


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):  # b"" once the server closed the connection
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_client_slow_to_send_headers_is_disconnected(url):
    with _connect(url) as sock:
        _trickle(sock, b"POST /rerank HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, seconds=4 * SMALL)
        assert _read_all(sock) == b""  # closed without an answer, and well before the 10 s read timeout


def test_a_client_slow_to_send_the_body_gets_408(url):
    body = b'{"candidates": [{"item_id": "a", "segment": "up", "base_score": 1.0}]}'
    head = (f"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with _connect(url) as sock:
        sock.sendall(head)
        _trickle(sock, body, seconds=4 * SMALL)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"within 0.5 s" in answer


def test_a_prompt_client_is_unaffected_by_the_timeouts(url):
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(3):  # one kept-alive connection, three requests
            resp = http.post("/rerank", json={"candidates": [{"item_id": "a", "segment": "up", "base_score": 2}]})
            assert resp.status_code == 200 and resp.json()["items"][0]["final_score"] == pytest.approx(1.0)


@pytest.mark.parametrize("score", [True, "0.5", None])
def test_base_score_must_be_a_json_number(url, score):
    with httpx.Client(base_url=url, timeout=10) as http:
        resp = http.post("/rerank", json={"candidates": [{"item_id": "a", "base_score": score}]})
        assert resp.status_code == 422 and "base_score" in resp.text
        assert http.post("/rerank", json={"candidates": [], "weight": "0.5"}).status_code == 422


def test_connection_cap_is_passed_to_uvicorn(small_config):
    from recsys.serve.app import _server

    rerank = dataclasses.replace(small_config.rerank, max_connections=7, keep_alive=2.0)
    server = _server(create_app(dataclasses.replace(small_config, rerank=rerank)), "127.0.0.1", 0)
    assert (server.config.limit_concurrency, server.config.timeout_keep_alive) == (7, 2.0)
