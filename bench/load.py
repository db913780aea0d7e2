"""A bounded HTTP load generator that runs in child processes, apart from the servers it measures."""

import asyncio
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

# (method, path?query, body or None, extra headers)
Request = tuple[str, str, bytes | None, dict[str, str]]
RequestSource = Callable[[int], Request] | Sequence[Request]
# Reads one answer (status, body) and returns counts to add to LoadResult.tallies.
Inspector = Callable[[int, bytes], Mapping[str, int]]

DEFAULT_TIMEOUT_S = 10.0
ERROR_PAUSE_S = 0.01  # after a failed request, so a dead server is not hammered in a busy loop
RESULT_WAIT_S = 120.0


def percentile_ms(seconds: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank, as harness.LatencySummary) in milliseconds."""
    if not seconds:
        return 0.0
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


@dataclass
class LoadResult:
    """What a load run saw, one entry per completed request in the parallel lists."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0  # connection errors and timeouts: requests that got no answer
    started: float = 0.0  # epoch seconds
    ended: float = 0.0
    completed_at: list[float] = field(default_factory=list)  # epoch seconds per request
    status_codes: list[int] = field(default_factory=list)  # per request
    error_at: list[float] = field(default_factory=list)  # epoch seconds per error
    error_kinds: Counter = field(default_factory=Counter)
    tallies: Counter = field(default_factory=Counter)  # summed from the inspector
    header_values: list[float] = field(default_factory=list)  # the captured header, as floats
    concurrency: int = 0
    connections: int = 0  # TCP connections opened: 1 per client when the server keeps them alive

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def duration_s(self) -> float:
        return max(self.ended - self.started, 0.0)

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile_ms(self.latencies_s, p)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(max(self.latencies_s, default=0.0) * 1000, 3),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": self.server_errors,
            "connections": self.connections,
        }

    def between(self, start: float, end: float) -> "LoadResult":
        """The requests that completed in [start, end) (epoch seconds), as a result of their own;
        tallies, captured headers and connections are not kept per request, so they are left
        out."""
        part = LoadResult(started=start, ended=end, concurrency=self.concurrency)
        for latency, at, status in zip(
            self.latencies_s, self.completed_at, self.status_codes, strict=True
        ):
            if start <= at < end:
                part.latencies_s.append(latency)
                part.completed_at.append(at)
                part.status_codes.append(status)
                part.statuses[status] += 1
        part.error_at = [at for at in self.error_at if start <= at < end]
        part.errors = len(part.error_at)
        return part

    def timeline(self, bucket_s: float, p: float = 99) -> list[tuple[float, float, int]]:
        """(seconds since start, latency percentile ms, completed requests) per time bucket."""
        buckets: dict[int, list[float]] = {}
        for latency, at in zip(self.latencies_s, self.completed_at, strict=True):
            buckets.setdefault(int((at - self.started) // bucket_s), []).append(latency)
        return [
            (index * bucket_s, percentile_ms(values, p), len(values))
            for index, values in sorted(buckets.items())
        ]

    @classmethod
    def merge(cls, parts: Sequence["LoadResult"]) -> "LoadResult":
        merged = cls(
            started=min((r.started for r in parts), default=0.0),
            ended=max((r.ended for r in parts), default=0.0),
            concurrency=sum(r.concurrency for r in parts),
        )
        for r in parts:
            merged.latencies_s += r.latencies_s
            merged.completed_at += r.completed_at
            merged.status_codes += r.status_codes
            merged.error_at += r.error_at
            merged.header_values += r.header_values
            merged.statuses.update(r.statuses)
            merged.error_kinds.update(r.error_kinds)
            merged.tallies.update(r.tallies)
            merged.errors += r.errors
            merged.connections += r.connections
        return merged


# --- The client: asyncio streams, HTTP/1.1 keep-alive (reconnecting when the server closes)


def encode_request(host: str, request: Request) -> bytes:
    method, target, body, headers = request
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, lower-cased headers, body, whether the server will close the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = status_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(chunk[:-2] for chunk in chunks)
    else:
        body = await reader.read()
        return int(status), headers, body, True
    closes = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return int(status), headers, body, closes


@dataclass(frozen=True)
class _Job:
    base_url: str
    source: Any  # RequestSource
    process_index: int
    processes: int
    concurrency: int
    requests: int | None
    deadline: float  # epoch seconds
    rate_per_s: float | None  # for this process
    timeout_s: float
    inspect: Inspector | None
    capture_header: str | None


def _request_at(source: Any, index: int) -> Request:
    if callable(source):
        return source(index)
    return source[index % len(source)]


async def _run_job(job: _Job, stop: Any) -> LoadResult:
    url = urlparse(job.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    host_header = f"{host}:{port}"
    result = LoadResult(started=time.time(), concurrency=job.concurrency)
    counter = iter(range(10**12))
    capture = job.capture_header.lower() if job.capture_header else None
    start_clock = time.monotonic()

    def next_index() -> int | None:
        k = next(counter)
        index = job.process_index + k * job.processes
        if job.requests is not None and index >= job.requests:
            return None
        if time.time() >= job.deadline or stop.is_set():
            return None
        return k

    async def client() -> None:
        reader = writer = None
        while (k := next_index()) is not None:
            if job.rate_per_s:
                delay = start_clock + k / job.rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            request = _request_at(job.source, job.process_index + k * job.processes)
            if writer is not None and reader.at_eof():  # the server closed it while idle
                writer.close()
                reader = writer = None
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), job.timeout_s
                    )
                    result.connections += 1
                writer.write(encode_request(host_header, request))
                status, headers, body, closes = await asyncio.wait_for(
                    read_response(reader), job.timeout_s
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                result.errors += 1
                result.error_at.append(time.time())
                result.error_kinds[type(error).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            result.latencies_s.append(time.perf_counter() - started)
            result.completed_at.append(time.time())
            result.status_codes.append(status)
            result.statuses[status] += 1
            if job.inspect is not None:
                result.tallies.update(job.inspect(status, body))
            if capture and capture in headers:
                with suppress(ValueError):
                    result.header_values.append(float(headers[capture]))
            if closes:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(job.concurrency)))
    result.ended = time.time()
    return result


def _child(job: _Job, stop: Any, results: Any) -> None:
    try:
        results.put((job.process_index, asyncio.run(_run_job(job, stop))))
    except BaseException as error:  # report, so the parent does not wait for nothing
        results.put((job.process_index, error))


def _jobs(
    base_url: str, request_for: RequestSource, *, concurrency: int, requests: int | None,
    duration_s: float | None, processes: int, rate_per_s: float | None, timeout_s: float,
    inspect: Inspector | None, capture_header: str | None,
) -> list[_Job]:  # fmt: skip
    if requests is None and duration_s is None:
        raise ValueError("a load needs a bound: requests, duration_s or both")
    if concurrency < 1 or processes < 1:
        raise ValueError("concurrency and processes must be at least 1")
    processes = min(processes, concurrency)
    deadline = time.time() + (duration_s if duration_s is not None else 10**9)
    return [
        _Job(
            base_url=base_url,
            source=request_for,
            process_index=p,
            processes=processes,
            concurrency=concurrency // processes + (1 if p < concurrency % processes else 0),
            requests=requests,
            deadline=deadline,
            rate_per_s=rate_per_s / processes if rate_per_s else None,
            timeout_s=timeout_s,
            inspect=inspect,
            capture_header=capture_header,
        )
        for p in range(processes)
    ]


class LoadHandle:
    """A load running in child processes; `result()` stops it (if still running) and merges."""

    def __init__(self, jobs: list[_Job], start_method: str) -> None:
        context = multiprocessing.get_context(start_method)
        self._stop = context.Event()
        self._results = context.Queue()
        self._processes = [
            context.Process(target=_child, args=(job, self._stop, self._results), daemon=True)
            for job in jobs
        ]
        self._result: LoadResult | None = None
        self.started = time.time()
        for process in self._processes:
            process.start()

    def stop(self) -> None:
        self._stop.set()

    def result(self, wait: bool = True) -> LoadResult:
        """Wait for the bounded run to end (or stop it at once with wait=False); merge results."""
        if self._result is not None:
            return self._result
        if not wait:
            self.stop()
        parts: list[LoadResult] = []
        failures: list[BaseException] = []
        for _ in self._processes:
            try:
                _, part = self._results.get(timeout=None if wait else RESULT_WAIT_S)
            except queue.Empty:
                failures.append(TimeoutError("a load process did not report"))
                continue
            (failures if isinstance(part, BaseException) else parts).append(part)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        if failures:
            raise RuntimeError(f"load process failed: {failures[0]!r}") from failures[0]
        self._result = LoadResult.merge(parts)
        return self._result


def run_http_load(
    base_url: str, request_for: RequestSource, *, concurrency: int, requests: int | None = None,
    duration_s: float | None = None, processes: int = 1, rate_per_s: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S, inspect: Inspector | None = None,
    capture_header: str | None = None, start_method: str = "fork",
) -> LoadResult:  # fmt: skip
    """Send requests to `base_url` from `processes` child processes with at most `concurrency`
    in flight, until `requests` have been sent or `duration_s` has passed (whichever first).

    `request_for` is a list of pre-built requests (cycled) or a function of the request index;
    pass a module-level function (picklable) if `start_method` is not "fork". `rate_per_s`
    paces request starts (open loop, all processes together); latency is measured from the
    send, so a server that falls behind shows as a lower throughput rather than in latency.
    `inspect(status, body)` returns counts to add to the result's tallies; `capture_header`
    names a response header whose value (a float) is kept per request. Each client keeps its
    connection open (HTTP/1.1 keep-alive) and opens a new one only when the server closes it
    (`Connection: close`, as gunicorn's sync workers answer, or an idle timeout), so
    `result.connections` tells which of the two the server did.
    """
    jobs = _jobs(
        base_url, request_for, concurrency=concurrency, requests=requests,
        duration_s=duration_s, processes=processes, rate_per_s=rate_per_s,
        timeout_s=timeout_s, inspect=inspect, capture_header=capture_header,
    )  # fmt: skip
    return LoadHandle(jobs, start_method).result()


@contextmanager
def background_load(
    base_url: str, request_for: RequestSource, *, concurrency: int, requests: int | None = None,
    duration_s: float | None = None, processes: int = 1, rate_per_s: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S, inspect: Inspector | None = None,
    capture_header: str | None = None, start_method: str = "fork",
) -> Iterator[LoadHandle]:  # fmt: skip
    """Run a load in child processes while the block runs; it is stopped when the block exits
    (or ends earlier at its own bound), and `handle.result()` then returns what it saw. With no
    bound given it runs until the block exits."""
    jobs = _jobs(
        base_url, request_for, concurrency=concurrency, requests=requests,
        duration_s=duration_s if requests is not None or duration_s is not None else 10**6,
        processes=processes, rate_per_s=rate_per_s, timeout_s=timeout_s, inspect=inspect,
        capture_header=capture_header,
    )  # fmt: skip
    handle = LoadHandle(jobs, start_method)
    try:
        yield handle
    finally:
        handle.result(wait=False)
