"""A flash sale: top sellers sold out in waves while shoppers read; servings after commit, refills."""

import asyncio
import json
import multiprocessing
import queue
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlparse

from django.db.models import Count

from aisle.conf import aisle_settings
from bench.harness import LatencySummary
from bench.load import Request, encode_request, read_response
from bench.serving import client_ip
from bench.stream import RECOMMENDATIONS_PATH, KeyspaceWatcher, answer_skus
from merch.models import Product
from merch.selectors.catalog import available_skus
from merch.services.catalog import mark_out_of_stock
from recs import redis_keys
from recs.candidates.refresh import FAMILIES, unavailable_now
from recs.candidates.store import decode_list, decode_skus, writer_client

PAGE_LIMIT = 8
SCAN_CHUNK = 500
PROCESS_INTERVAL_S = 0.05

# One answer a reader got: (sent at, answered at (epoch s), status, SKUs, page index).
Served = tuple[float, float, int, tuple[str, ...], int]


# --- Who sells, and which pages show them


def top_sellers(count: int) -> list[str]:
    """The products bought most often in the imported history that are in stock now."""
    from recs.models import Event

    ranked = (
        Event.objects.filter(event_type="purchase")
        .values("product_sku")
        .annotate(n=Count("id"))
        .order_by("-n", "product_sku")
        .values_list("product_sku", flat=True)[: count * 3]
    )
    ranked = list(ranked)
    available = available_skus(ranked)
    return [sku for sku in ranked if sku in available][:count]


def split_waves(skus: Sequence[str], waves: int) -> list[list[str]]:
    """Consecutive slices of the ranking, best sellers first, as even as possible."""
    size, extra = divmod(len(skus), waves)
    result, start = [], 0
    for n in range(waves):
        end = start + size + (1 if n < extra else 0)
        if end > start:
            result.append(list(skus[start:end]))
        start = end
    return result


def reader_pages(
    sellers: Sequence[str], heavy_users: Sequence[str], countries: Sequence[str], *,
    neighbours_per_seller: int = 4,
) -> list[Request]:  # fmt: skip
    """What shoppers around a sale load: product pages of the top sellers' neighbours (whose
    answers hold the top sellers), and home pages of anonymous visitors and of customers.
    Each page has its own client address, throttled on its own as behind a proxy."""
    pipe = writer_client().pipeline(transaction=False)
    for sku in sellers:
        pipe.get(redis_keys.similar_cf_list(sku))
    products: list[str] = []
    for raw in pipe.execute():
        products += [sku for sku, _ in decode_list(raw)[:neighbours_per_seller]]
    products = list(dict.fromkeys(products))
    queries = [{"placement": "product_detail", "product_id": sku} for sku in products]
    homes = max(len(queries) // 3, 8)
    queries += [{"placement": "home", "session_id": f"sale-anon-{n}",
                 "country": countries[n % len(countries)] if countries else ""}
                for n in range(homes)]  # fmt: skip
    queries += [{"placement": "home", "user_id": user, "session_id": f"sale-user-{user}"}
                for user in heavy_users[:homes]]  # fmt: skip
    pages: list[Request] = []
    for n, query in enumerate(queries):
        query = {k: v for k, v in query.items() if v} | {"limit": str(PAGE_LIMIT)}
        target = f"{RECOMMENDATIONS_PATH}?{urlencode(query)}"
        pages.append(("GET", target, None, {"X-Forwarded-For": client_ip(5000 + n)}))
    # Interleave the kinds so that every reader sees both.
    return [pages[i] for i in sorted(range(len(pages)), key=lambda i: (i * 7919) % len(pages))]


# --- Readers in child processes, keeping every answer


async def _read(base_url: str, pages: Sequence[Request], first: int, step: int,
                deadline: float, stop: Any) -> list[Served]:  # fmt: skip
    url = urlparse(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    served: list[Served] = []
    reader = writer = None
    n = first
    while time.time() < deadline and not stop.is_set():
        index = n % len(pages)
        n += step
        sent = time.time()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(encode_request(f"{host}:{port}", pages[index]))
            status, _, body, closes = await asyncio.wait_for(read_response(reader), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            if writer is not None:
                writer.close()
            reader = writer = None
            served.append((sent, time.time(), 0, (), index))
            await asyncio.sleep(0.01)
            continue
        answered = time.time()
        try:
            skus = tuple(answer_skus(json.loads(body)))
        except ValueError:
            skus = ()
        served.append((sent, answered, status, skus, index))
        if closes:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()
    return served


def _readers_child(base_url: str, pages: Sequence[Request], clients: range, total: int,
                   deadline: float, stop: Any, results: Any) -> None:  # fmt: skip
    async def all_clients() -> list[Served]:
        parts = await asyncio.gather(
            *(_read(base_url, pages, c, total, deadline, stop) for c in clients)
        )
        return [answer for part in parts for answer in part]

    try:
        results.put(asyncio.run(all_clients()))
    except BaseException as error:
        results.put(error)


class Readers:
    """`clients` shoppers in `processes` child processes, each loading pages one after the
    other, until stopped (or `max_seconds`); `stop()` returns every answer."""

    def __init__(self, base_url: str, pages: Sequence[Request], clients: int, processes: int,
                 max_seconds: float) -> None:  # fmt: skip
        context = multiprocessing.get_context("fork")
        self._stop, self._results = context.Event(), context.Queue()
        deadline = time.time() + max_seconds
        processes = max(1, min(processes, clients))
        self._processes = [
            context.Process(
                target=_readers_child,
                args=(
                    base_url,
                    list(pages),
                    range(p, clients, processes),
                    clients,
                    deadline,
                    self._stop,
                    self._results,
                ),
                daemon=True,
            )
            for p in range(processes)
        ]
        for process in self._processes:
            process.start()

    def stop(self) -> list[Served]:
        self._stop.set()
        served: list[Served] = []
        for _ in self._processes:
            try:
                part = self._results.get(timeout=60)
            except queue.Empty as error:
                raise RuntimeError("a reader process did not report") from error
            if isinstance(part, BaseException):
                raise RuntimeError(f"a reader process failed: {part!r}") from part
            served += part
        for process in self._processes:
            process.join(timeout=10)
        return sorted(served)


# --- Lists that must refill


@dataclass(frozen=True)
class ListWatch:
    """A cached list that held a product of the wave: how many available products it must
    hold again (its size, or what it held before when it was shorter)."""

    key: str
    target: int
    length_before: int


def available_count(ranked: Iterable[tuple[str, float]], unavailable: set[str]) -> int:
    return sum(1 for sku, _ in ranked if sku not in unavailable)


def needs_refill(
    ranked: Sequence[tuple[str, float]], size: int, unavailable_before: set[str], sold: set[str]
) -> ListWatch | None:
    """The watch for a list that the sell-out leaves short, else None (list key left empty)."""
    if not any(sku in sold for sku, _ in ranked):
        return None
    before = available_count(ranked, unavailable_before)
    after = available_count(ranked, unavailable_before | sold)
    target = min(size, before)
    return ListWatch("", target, len(ranked)) if after < target else None


def lists_to_refill(sold: Sequence[str], unavailable_before: set[str]) -> list[ListWatch]:
    """Every list of the refreshed families that holds one of `sold` and is short for their
    sale (its available products counted as before the sale, with `unavailable_before`)."""
    client = writer_client()
    sold_set = set(sold)
    watches: list[ListWatch] = []
    for prefix, (_, size_setting) in FAMILIES.items():
        size = getattr(aisle_settings, size_setting)
        keys = list(client.scan_iter(match=prefix + "*", count=SCAN_CHUNK))
        for start in range(0, len(keys), SCAN_CHUNK):
            chunk = keys[start : start + SCAN_CHUNK]
            for key, raw in zip(chunk, client.mget(chunk), strict=True):
                if not raw or sold_set.isdisjoint(decode_skus(raw)):
                    continue
                watch = needs_refill(decode_list(raw), size, unavailable_before, sold_set)
                if watch is not None:
                    watches.append(ListWatch(key.decode(), watch.target, watch.length_before))
    return watches


@dataclass
class _Open:
    wave: int  # position in RefillTracker.waves
    watch: ListWatch
    committed_at: float
    unavailable: set[str]


@dataclass
class WaveResult:
    index: int
    skus: list[str]
    called_at: float = 0.0  # epoch s: mark_out_of_stock called
    committed_at: float = 0.0  # epoch s: it returned (committed, Redis updated)
    lists: int = 0
    refilled_s: list[float] = field(default_factory=list)  # per list, after the commit
    short_s: list[float] = field(default_factory=list)  # rewritten, nothing more to add
    not_rewritten: int = 0
    not_rewritten_keys: list[str] = field(default_factory=list)  # the first few, to look into

    @property
    def call_ms(self) -> float:
        return (self.committed_at - self.called_at) * 1000

    @property
    def refill(self) -> LatencySummary:
        return LatencySummary.of(self.refilled_s)

    @property
    def all_done_s(self) -> float | None:
        """Until the last list of the wave was rewritten (None if some never were)."""
        if self.not_rewritten:
            return None
        return max([*self.refilled_s, *self.short_s], default=0.0)


class RefillTracker:
    """Follows the lists each wave left short through the watcher's record of writes: a list
    is refilled at the write after which it holds its available length again."""

    def __init__(self, watcher: KeyspaceWatcher) -> None:
        self.watcher = watcher
        self.seen = len(watcher.writes)
        self.open: dict[str, list[_Open]] = defaultdict(list)
        self.waves: list[WaveResult] = []

    def add_wave(self, wave: WaveResult, watches: Sequence[ListWatch], unavailable: set[str]):
        position = len(self.waves)
        self.waves.append(wave)
        wave.lists = len(watches)
        for watch in watches:
            self.open[watch.key].append(_Open(position, watch, wave.committed_at, unavailable))

    @property
    def pending(self) -> int:
        return sum(len(entries) for entries in self.open.values())

    def process(self) -> None:
        writes = self.watcher.writes[self.seen :]
        self.seen += len(writes)
        latest: dict[str, float] = {}  # key -> its last write seen
        for at, key in writes:
            if key in self.open:
                latest[key] = at
        if not latest:
            return
        keys = list(latest)
        values = writer_client().mget(keys)
        for key, raw in zip(keys, values, strict=True):
            last = latest[key]
            ranked = decode_list(raw)
            still_open = []
            for entry in self.open[key]:
                if last < entry.committed_at:
                    still_open.append(entry)
                    continue
                wave = self.waves[entry.wave]
                if available_count(ranked, entry.unavailable) >= entry.watch.target:
                    wave.refilled_s.append(last - entry.committed_at)
                elif len(ranked) <= entry.watch.length_before:
                    # The learner had nothing more to offer: the rewrite is the refill.
                    wave.short_s.append(last - entry.committed_at)
                else:
                    still_open.append(entry)
            if still_open:
                self.open[key] = still_open
            else:
                del self.open[key]

    def close(self) -> None:
        for entries in self.open.values():
            for entry in entries:
                wave = self.waves[entry.wave]
                wave.not_rewritten += 1
                if len(wave.not_rewritten_keys) < 5:
                    wave.not_rewritten_keys.append(entry.watch.key)
        self.open.clear()


# --- What was served


def servings_after_stockout(
    served: Sequence[Served], stockouts: dict[str, float]
) -> list[tuple[float, str, float]]:
    """(request sent at, SKU, stock-out committed at) for every answer to a request sent after
    the stock-out of a product it holds had committed."""
    return [
        (sent, sku, stockouts[sku])
        for sent, _, _, skus, _ in served
        for sku in skus
        if sku in stockouts and sent > stockouts[sku]
    ]


def servings_in_flight(served: Sequence[Served], wave: WaveResult) -> int:
    """Answers holding a product of the wave to requests sent before its commit returned and
    answered after the call began: allowed, the request raced the commit."""
    skus = set(wave.skus)
    return sum(
        1
        for sent, answered, _, held, _ in served
        if sent <= wave.committed_at and answered >= wave.called_at and skus.intersection(held)
    )


def servings_before(served: Sequence[Served], wave: WaveResult) -> int:
    """Answers holding a product of the wave before it sold out: the test had teeth."""
    skus = set(wave.skus)
    return sum(
        1 for sent, answered, _, held, _ in served
        if answered < wave.called_at and skus.intersection(held)
    )  # fmt: skip


@dataclass
class FlashSaleResult:
    waves: list[WaveResult]
    served: list[Served]
    pages: int
    clients: int
    started_at: float
    ended_at: float
    refill_limit_s: float
    violations: list[tuple[float, str, float]] = field(default_factory=list)

    @property
    def latency(self) -> LatencySummary:
        return LatencySummary.of([answered - sent for sent, answered, *_ in self.served])

    @property
    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for _, _, status, _, _ in self.served:
            counts[status] += 1
        return dict(sorted(counts.items()))

    @property
    def answers_after_first_commit(self) -> int:
        first = min((w.committed_at for w in self.waves), default=self.ended_at)
        return sum(1 for sent, *_ in self.served if sent > first)


def run_flash_sale(
    base_url: str, waves: Sequence[Sequence[str]], pages: Sequence[Request],
    watcher: KeyspaceWatcher, *, clients: int = 32, processes: int = 2,
    first_wave_s: float = 8.0, wave_interval_s: float = 12.0, refill_limit_s: float = 45.0,
) -> FlashSaleResult:  # fmt: skip
    """Readers load pages throughout; each wave sells its products out through the admin's
    code path (`merch.services.catalog.mark_out_of_stock`) in this process; then the readers go on
    until every short list was rewritten or `refill_limit_s` after the last wave."""
    tracker = RefillTracker(watcher)
    max_seconds = first_wave_s + wave_interval_s * len(waves) + refill_limit_s + 30
    readers = Readers(base_url, pages, clients, processes, max_seconds)
    started = time.time()

    def follow_until(moment: float) -> None:
        while time.time() < moment:
            tracker.process()
            time.sleep(PROCESS_INTERVAL_S)

    ids = dict(Product.objects.filter(sku__in=[s for w in waves for s in w])
               .values_list("sku", "pk"))  # fmt: skip
    try:
        for index, skus in enumerate(waves):
            follow_until(started + first_wave_s + index * wave_interval_s)
            unavailable_before = unavailable_now()
            wave = WaveResult(index + 1, list(skus))
            wave.called_at = time.time()
            mark_out_of_stock([ids[sku] for sku in skus])
            wave.committed_at = time.time()
            # Scanned after the commit, so that every write that could refill a list comes
            # after the scan's start or is seen by the tracker (which reads writes from the
            # commit on); a list rewritten meanwhile is simply not short any more.
            watches = lists_to_refill(skus, unavailable_before)
            tracker.add_wave(wave, watches, unavailable_before | set(skus))
        limit = time.time() + refill_limit_s
        while time.time() < limit and tracker.pending:
            follow_until(time.time() + 0.2)
        follow_until(time.time() + 1.0)  # a second more of reading after the last refill
    finally:
        served = readers.stop()
    tracker.process()
    tracker.close()
    stockouts = {sku: wave.committed_at for wave in tracker.waves for sku in wave.skus}
    return FlashSaleResult(
        waves=tracker.waves, served=served, pages=len(pages), clients=clients,
        started_at=started, ended_at=time.time(), refill_limit_s=refill_limit_s,
        violations=servings_after_stockout(served, stockouts),
    )  # fmt: skip
