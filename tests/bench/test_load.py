"""bench.load: result arithmetic, the HTTP/1.1 client's framing, and a small real load."""

import asyncio
import pickle
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import (
    LoadResult,
    background_load,
    encode_request,
    percentile_ms,
    read_response,
    run_http_load,
)


def test_percentile_is_nearest_rank_in_milliseconds():
    seconds = [n / 1000 for n in range(1, 101)]  # 1..100 ms

    assert percentile_ms(seconds, 50) == pytest.approx(51.0)
    assert percentile_ms(seconds, 99) == pytest.approx(99.0)
    assert percentile_ms(seconds, 100) == pytest.approx(100.0)
    assert percentile_ms([], 99) == 0.0


def result_of(latencies, completed_at, statuses, started=100.0, ended=110.0):
    return LoadResult(
        latencies_s=list(latencies),
        statuses=Counter(statuses),
        started=started,
        ended=ended,
        completed_at=list(completed_at),
        status_codes=list(statuses),
        concurrency=4,
    )


def test_summary_counts_throughput_and_server_errors():
    result = result_of([0.001] * 9 + [0.5], [101 + n for n in range(10)], [200] * 9 + [503])

    summary = result.summary()

    assert result.throughput == pytest.approx(1.0)
    assert summary["requests"] == 10
    assert summary["server_errors"] == 1
    assert summary["statuses"] == {200: 9, 503: 1}
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["max_ms"] == pytest.approx(500.0)


def test_between_keeps_only_requests_completed_in_the_window():
    result = result_of([0.001, 0.002, 0.003], [101.0, 105.0, 109.0], [200, 500, 200])
    result.error_at = [104.0, 108.0]
    result.errors = 2

    window = result.between(104.0, 109.0)

    assert window.latencies_s == [0.002]
    assert window.statuses == {500: 1}
    assert window.errors == 2
    assert window.duration_s == pytest.approx(5.0)


def test_timeline_buckets_by_time_since_start():
    result = result_of([0.001, 0.003, 0.010], [100.2, 100.7, 101.5], [200, 200, 200])

    assert result.timeline(1.0, p=100) == [(0.0, pytest.approx(3.0), 2), (1.0, 10.0, 1)]


def test_merge_adds_up_parts():
    first = result_of([0.001], [101.0], [200], started=100.0, ended=105.0)
    second = result_of([0.002], [102.0], [404], started=99.0, ended=106.0)
    second.tallies = Counter(accepted=3)
    first.connections, second.connections = 1, 4

    merged = LoadResult.merge([first, second])

    assert merged.requests == 2
    assert merged.statuses == {200: 1, 404: 1}
    assert (merged.started, merged.ended, merged.concurrency) == (99.0, 106.0, 8)
    assert merged.tallies == {"accepted": 3}
    assert merged.connections == 5


def test_encode_request_sets_host_and_content_length():
    raw = encode_request("127.0.0.1:8000", ("POST", "/api/v1/events", b'{"a": 1}', {"X-A": "b"}))

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /api/v1/events HTTP/1.1",
        b"Host: 127.0.0.1:8000",
        b"X-A: b",
        b"Content-Length: 8",
    ]
    assert body == b'{"a": 1}'


@pytest.mark.parametrize(
    ("raw", "body", "closes"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n",
         b"ok!", False),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", b"until close", True),
    ],
)  # fmt: skip
def test_read_response_frames_bodies(raw, body, closes):
    async def read():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_response(reader)

    status, _headers, got, will_close = asyncio.run(read())

    assert (status, got, will_close) == (200, body, closes)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        """/ok and anything else (404) keep the connection alive; /close answers with
        `Connection: close` as gunicorn's sync workers do; /drop closes it without saying so,
        as a server does to an idle keep-alive connection."""
        body = b'{"ok": true}'
        self.send_response(200 if self.path in ("/ok", "/close", "/drop") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Bench-Server-Time", "0.001")
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/drop":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def count_ok(status: int, body: bytes) -> dict[str, int]:
    return {"ok": 1} if b"true" in body else {}


def test_run_http_load_sends_exactly_the_requests_asked_for(server_url):
    requests = [("GET", "/ok", None, {}), ("GET", "/missing", None, {})]

    result = run_http_load(
        server_url, requests, concurrency=3, requests=20, processes=2, inspect=count_ok,
        capture_header="X-Bench-Server-Time",
    )  # fmt: skip

    assert result.statuses == {200: 10, 404: 10}
    assert result.errors == 0
    assert result.tallies == {"ok": 20}
    assert result.header_values == [0.001] * 20


def test_each_client_keeps_its_connection_alive(server_url):
    result = run_http_load(server_url, [("GET", "/ok", None, {})], concurrency=3, requests=30,
                           processes=2)  # fmt: skip

    assert result.statuses == {200: 30}
    assert result.connections == 3
    assert result.summary()["connections"] == 3


def test_a_connection_the_server_closes_is_reopened(server_url):
    result = run_http_load(server_url, [("GET", "/close", None, {})], concurrency=2, requests=10)

    assert (result.statuses, result.errors, result.connections) == ({200: 10}, 0, 10)


def test_a_connection_closed_while_idle_is_reopened_before_the_next_request(server_url):
    # Paced: the server's close has arrived by the time the client sends its next request.
    result = run_http_load(server_url, [("GET", "/drop", None, {})], concurrency=1, requests=5,
                           rate_per_s=20)  # fmt: skip

    assert (result.statuses, result.errors, result.connections) == ({200: 5}, 0, 5)


def test_background_load_stops_when_the_block_ends(server_url):
    with background_load(server_url, [("GET", "/ok", None, {})], concurrency=2) as handle:
        pass

    assert set(handle.result().statuses) <= {200}


def test_connection_refused_counts_as_errors_not_answers():
    result = run_http_load("http://127.0.0.1:9", [("GET", "/", None, {})], concurrency=1,
                           requests=3)  # fmt: skip

    assert result.requests == 0
    assert result.errors == 3


def test_a_load_needs_a_bound():
    with pytest.raises(ValueError, match="bound"):
        run_http_load("http://127.0.0.1:9", [("GET", "/", None, {})], concurrency=1)


def test_load_results_pickle():
    result = result_of([0.001], [101.0], [200])

    assert pickle.loads(pickle.dumps(result)).summary() == result.summary()
