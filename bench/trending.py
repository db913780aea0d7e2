"""A burst of events on a cold product: how soon it ranks in the live trending list and answers."""

import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aisle.conf import aisle_settings
from bench.stream import StorefrontClient, rank_in
from merch.models import Placement, Product
from merch.selectors.catalog import available_skus
from merch.services.merchandising import save_placement
from recs import redis_keys
from recs.candidates.store import writer_client
from recs.serving.catalog import cards

PLACEMENT_KEY = "trending_now"
ANSWER_LIMIT = 50  # SERVING_MAX_LIMIT's default: deep enough to see a top 50
LIVE_POLL_S = 0.002
LIVE_SAMPLE_S = 0.25  # an unchanged rank is still recorded this often (for the plot)


def ensure_trending_placement() -> str:
    """A placement serving strategy "trending" (through the merchandiser's service), with no
    per-category cap, so that its answer is the trending ranking minus what is unavailable."""
    placement = Placement.objects.filter(key=PLACEMENT_KEY).first() or Placement(
        key=PLACEMENT_KEY, name="Trending now"
    )
    placement.default_strategy = Placement.Strategy.TRENDING
    placement.size = ANSWER_LIMIT
    placement.max_per_category = 0
    placement.is_active = True
    save_placement(placement)
    return PLACEMENT_KEY


def cold_products(count: int) -> list[str]:
    """Products in stock that no event has ever named, nor the live trending ranking."""
    from recs.models import Event

    touched = set(Event.objects.values_list("product_sku", flat=True).distinct())
    skus = sorted(
        set(Product.objects.filter(is_active=True).values_list("sku", flat=True)) - touched
    )
    live = {sku.decode() for sku in writer_client().zrange(redis_keys.TRENDING_SCORES, 0, -1)}
    in_catalog = cards(None)
    candidates = [sku for sku in available_skus(skus) if sku not in live and sku in in_catalog]
    return sorted(candidates)[:count]


def live_scores(top: int) -> list[float]:
    """Current (decayed) trending scores of the live ranking's first `top` products."""
    half_life_s = aisle_settings.TRENDING_HALF_LIFE_HOURS * 3600
    log_now = time.time() / half_life_s
    ranked = writer_client().zrevrange(redis_keys.TRENDING_SCORES, 0, top - 1, withscores=True)
    return [2.0 ** (score - log_now) for _, score in ranked]


def first_time_within(samples: Sequence[tuple[float, int | None]], top: int) -> float | None:
    """When a 0-based rank series (seconds, rank or None) first reached the first `top`."""
    return next((t for t, rank in samples if rank is not None and rank < top), None)


@dataclass
class Burst:
    size: int
    sku: str
    title: str
    post_s: float = 0.0
    post_status: int = 0
    live: list[tuple[float, int | None]] = field(default_factory=list)  # (s, ZREVRANK)
    answer: list[tuple[float, int | None]] = field(default_factory=list)  # (s, position)
    score_10th: float = 0.0  # live score of the 10th product when the burst was sent
    score_50th: float = 0.0
    ranked_products: int = 0  # products in the live ranking when the burst was sent

    def to_top(self, top: int, view: str) -> float | None:
        return first_time_within(self.live if view == "live" else self.answer, top)

    def best(self, view: str) -> int | None:
        ranks = [r for _, r in (self.live if view == "live" else self.answer) if r is not None]
        return min(ranks) if ranks else None


def click_burst(size: int, sku: str, tag: str) -> list[dict]:
    """`size` clicks on one product, each from a shopper of its own."""
    return [
        {"event_id": f"burst-{tag}-{n}", "type": "click", "session_id": f"burst-{tag}-{n}",
         "product_id": sku, "context": {"device": "mobile", "placement": "home"}}
        for n in range(size)
    ]  # fmt: skip


def run_trending(
    base_url: str, write_key: str, sizes: Sequence[int], products: Sequence[str], *,
    track_s: float = 10.0, poll_s: float = 0.02,
) -> list[Burst]:  # fmt: skip
    """For each burst size in turn: post the burst on a cold product in one batch, then follow
    its rank for `track_s` seconds in the live ranking (`f:product:trending_score`, read by the
    render path; a thread asks Redis every LIVE_POLL_S) and in the trending placement's answers
    (every `poll_s`)."""
    client = StorefrontClient(base_url, write_key, client_ip="10.250.0.3")
    query = {"placement": PLACEMENT_KEY, "session_id": "trend-watcher", "limit": str(ANSWER_LIMIT)}
    redis = writer_client()
    titles = cards(None)
    bursts: list[Burst] = []
    for size, sku in zip(sizes, products, strict=False):
        scores = live_scores(50)
        burst = Burst(size, sku, titles[sku].title if sku in titles else sku)
        burst.ranked_products = redis.zcard(redis_keys.TRENDING_SCORES)
        burst.score_10th = scores[9] if len(scores) >= 10 else 0.0
        burst.score_50th = scores[49] if len(scores) >= 50 else 0.0
        events = click_burst(size, sku, f"{size}-{uuid.uuid4().hex[:6]}")
        sent = time.perf_counter()

        def follow_live(burst: Burst = burst, sku: str = sku, sent: float = sent) -> None:
            last: tuple[int | None, float] = (-1, 0.0)  # (rank, when recorded)
            while (elapsed := time.perf_counter() - sent) < track_s:
                rank = redis.zrevrank(redis_keys.TRENDING_SCORES, sku)
                if rank != last[0] or elapsed - last[1] >= LIVE_SAMPLE_S:
                    burst.live.append((elapsed, rank))
                    last = (rank, elapsed)
                time.sleep(LIVE_POLL_S)

        live = threading.Thread(target=follow_live, daemon=True)
        live.start()
        posted = client.post_events(events)
        burst.post_s, burst.post_status = posted.ended - sent, posted.status
        while time.perf_counter() - sent < track_s:
            answer = client.recommendations(query)
            burst.answer.append((answer.ended - sent, rank_in(answer.data, sku)))
            time.sleep(poll_s)
        live.join()
        bursts.append(burst)
    client.close()
    return bursts


def event_score(size: int) -> float:
    """A burst's trending score right after it: clicks weigh EVENT_WEIGHTS["click"] each."""
    return size * aisle_settings.EVENT_WEIGHTS.get("click", 0.0)


def half_life_note() -> str:
    hours = aisle_settings.TRENDING_HALF_LIFE_HOURS
    per_minute = 1 - 2 ** (-1 / (hours * 60))
    return f"{hours:g} h (a score loses {per_minute:.2%} a minute; {math.log2(10) * hours:.0f} h to a tenth)"
