"""Click to reflected recommendations, and the debounced re-score of a collaborative list."""

import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aisle.conf import aisle_settings
from bench.harness import LatencySummary, wait_until
from bench.stream import KeyspaceWatcher, StorefrontClient
from recs import redis_keys
from recs.candidates.store import decode_list, writer_client
from recs.features import get_online
from recs.serving.catalog import cards

KINDS = ("content", "collaborative")
MIN_NEIGHBOURS = 10  # a clicked product has at least this many neighbours to show
PAUSE_BETWEEN_TRIALS_S = 0.02
FEATURE_POLL_S = 0.001


@dataclass(frozen=True)
class TrialPlan:
    """One shopper's click: a fresh anonymous session (0 -> 1 interaction: content tier) or a
    customer with 10+ interactions and a cached list (collaborative tier)."""

    kind: str
    session_id: str
    user_id: str
    sku: str
    title: str

    def query(self, placement: str, limit: int) -> dict[str, str]:
        query = {"placement": placement, "session_id": self.session_id, "limit": str(limit)}
        if self.user_id:
            query["user_id"] = self.user_id
        return query


def viewed_reasons(title: str) -> tuple[str, str]:
    """The reasons the render path gives items that are there because this product was viewed
    (recs.serving.recommend: content neighbours, and collaborative neighbours)."""
    return f"similar to {title} you viewed", f"popular with shoppers who viewed {title}"


def reflects(answer: object, plan: TrialPlan) -> bool:
    """Whether a recommendations answer shows the click: the expected tier, and at least one
    item that is there because the clicked product was viewed."""
    if not isinstance(answer, dict) or answer.get("tier") != plan.kind:
        return False
    reasons = viewed_reasons(plan.title)
    return any(item.get("reason") in reasons for item in answer.get("items", []))


def plan_trials(
    count: int, heavy_users: Sequence[str], content_products: Sequence[str],
    cf_products: Sequence[str], titles: dict[str, str], seed: int = 11,
) -> list[TrialPlan]:  # fmt: skip
    """`count` trials, the two kinds in turn; each collaborative trial has a customer of its own
    (so no re-score is already pending for them) and every session is new."""
    rng = random.Random(seed)
    users = list(heavy_users)
    rng.shuffle(users)
    plans: list[TrialPlan] = []
    run = uuid.uuid4().hex[:6]
    for n in range(count):
        kind = KINDS[n % 2]
        if kind == "collaborative" and (not users or not cf_products):
            kind = "content"
        if kind == "content" and not content_products:
            break
        sku = rng.choice(cf_products if kind == "collaborative" else content_products)
        plans.append(
            TrialPlan(
                kind=kind,
                session_id=f"fresh-{run}-{n}",
                user_id=users.pop() if kind == "collaborative" else "",
                sku=sku,
                title=titles.get(sku, sku),
            )
        )
    return plans


def products_with_neighbours(candidates: Sequence[str]) -> tuple[list[str], list[str]]:
    """Of these products (repeats kept, so popular ones are drawn more), those with at least
    MIN_NEIGHBOURS content neighbours, and those with as many collaborative neighbours."""
    unique = list(dict.fromkeys(candidates))
    pipe = writer_client().pipeline(transaction=False)
    for sku in unique:
        pipe.get(redis_keys.similar_content_list(sku))
        pipe.get(redis_keys.similar_cf_list(sku))
    replies = pipe.execute()
    content, collaborative = set(), set()
    for i, sku in enumerate(unique):
        if len(decode_list(replies[2 * i])) >= MIN_NEIGHBOURS:
            content.add(sku)
        if len(decode_list(replies[2 * i + 1])) >= MIN_NEIGHBOURS:
            collaborative.add(sku)
    return [s for s in candidates if s in content], [s for s in candidates if s in collaborative]


@dataclass
class Trial:
    plan: TrialPlan
    clicked_at: float = 0.0  # epoch s, just before the click was sent
    post_s: float = 0.0  # the click's POST, until its 202
    post_status: int = 0
    applied_s: float | None = None  # the click seen in the online feature store (Redis)
    reflected_s: float | None = None  # the first answer reflecting it, received
    reflected_sent_s: float | None = None  # ... and when that request was sent
    polls: list[float] = field(default_factory=list)  # seconds per poll
    fallback_polls: int = 0  # answers served from the Redis-down fallback
    valid: bool = True  # the answer before the click did not already reflect it
    rescored_s: float | None = None  # c:user:<id> rewritten (collaborative trials)


@dataclass
class FreshnessResult:
    trials: list[Trial]
    placement: str
    limit: int
    poll_interval_s: float
    timeout_s: float
    rescore_wait_s: float
    apply_in_process: LatencySummary | None = None  # measure_apply(), before the servers ran

    def valid(self, kind: str | None = None) -> list[Trial]:
        return [t for t in self.trials if t.valid and (kind is None or t.plan.kind == kind)]

    def reflected(self, kind: str | None = None) -> LatencySummary:
        """Click -> reflecting answer received; a trial that timed out counts as the timeout."""
        return LatencySummary.of(
            [t.reflected_s if t.reflected_s is not None else self.timeout_s
             for t in self.valid(kind)]
        )  # fmt: skip

    def reflected_sent(self) -> LatencySummary:
        return LatencySummary.of(
            [t.reflected_sent_s for t in self.valid() if t.reflected_sent_s is not None]
        )

    def applied(self) -> LatencySummary:
        return LatencySummary.of([t.applied_s for t in self.valid() if t.applied_s is not None])

    def posts(self) -> LatencySummary:
        return LatencySummary.of([t.post_s for t in self.valid()])

    def polls(self) -> LatencySummary:
        return LatencySummary.of([s for t in self.valid() for s in t.polls])

    def fallback_polls(self) -> int:
        return sum(t.fallback_polls for t in self.valid())

    def timed_out(self, kind: str | None = None) -> int:
        return sum(t.reflected_s is None for t in self.valid(kind))

    def rescored(self) -> LatencySummary:
        return LatencySummary.of(
            [t.rescored_s for t in self.valid("collaborative") if t.rescored_s is not None]
        )

    def not_rescored(self) -> int:
        return sum(t.rescored_s is None for t in self.valid("collaborative"))


def _feature_applied(plan: TrialPlan) -> bool:
    entity, entity_id = ("user", plan.user_id) if plan.user_id else ("session", plan.session_id)
    return plan.sku in get_online(entity, entity_id, ["recently_viewed"])["recently_viewed"]


def run_trial(
    client: StorefrontClient, plan: TrialPlan, *, placement: str, limit: int,
    poll_interval_s: float, timeout_s: float,
) -> Trial:  # fmt: skip
    """Ask once, click, then poll the API until an answer reflects the click or `timeout_s`
    passes; meanwhile a thread reads the shopper's features straight from Redis every
    millisecond, to tell when the events worker applied the click."""
    trial = Trial(plan)
    query = plan.query(placement, limit)
    before = client.recommendations(query)
    if reflects(before.data, plan):
        trial.valid = False
        return trial
    rec_id = before.data.get("rec_id", "") if isinstance(before.data, dict) else ""
    event = {
        "event_id": f"click-{plan.session_id}",
        "type": "click",
        "session_id": plan.session_id,
        "product_id": plan.sku,
        "context": {"placement": placement, "rec_id": rec_id, "device": "desktop"},
    }
    if plan.user_id:
        event["user_id"] = plan.user_id
    done = threading.Event()
    trial.clicked_at = time.time()
    clicked = time.perf_counter()

    def watch_feature_store() -> None:
        while not done.is_set() and time.perf_counter() - clicked < timeout_s:
            if _feature_applied(plan):
                trial.applied_s = time.perf_counter() - clicked
                return
            time.sleep(FEATURE_POLL_S)

    watcher = threading.Thread(target=watch_feature_store, daemon=True)
    watcher.start()
    posted = client.post_events([event])
    trial.post_s, trial.post_status = posted.ended - clicked, posted.status
    deadline = clicked + timeout_s
    while time.perf_counter() < deadline:
        answer = client.recommendations(query)
        trial.polls.append(answer.seconds)
        if isinstance(answer.data, dict) and answer.data.get("source") == "fallback":
            trial.fallback_polls += 1
        if reflects(answer.data, plan):
            trial.reflected_s = answer.ended - clicked
            trial.reflected_sent_s = answer.started - clicked
            break
        time.sleep(poll_interval_s)
    watcher.join(timeout=1)
    done.set()
    return trial


def run_freshness(
    base_url: str, write_key: str, plans: Sequence[TrialPlan], watcher: KeyspaceWatcher, *,
    placement: str = "home", limit: int | None = None, poll_interval_s: float = 0.005,
    timeout_s: float = 5.0, max_seconds: float = 120.0,
) -> FreshnessResult:  # fmt: skip
    """The trials one after the other, then a wait for the re-scores of the collaborative ones
    (each scheduled RESCORE_DEBOUNCE_S after the click). The answers are asked as deep as the
    API allows (SERVING_MAX_LIMIT): the neighbours of one view enter a collaborative shopper's
    list below their own best items (SESSION_RERANK_WEIGHT), not always in a page's first 8."""
    limit = limit or aisle_settings.SERVING_MAX_LIMIT
    client = StorefrontClient(base_url, write_key, client_ip="10.250.0.2")
    trials: list[Trial] = []
    stop_at = time.monotonic() + max_seconds
    for plan in plans:
        if time.monotonic() >= stop_at:
            break
        trials.append(run_trial(client, plan, placement=placement, limit=limit,
                                poll_interval_s=poll_interval_s, timeout_s=timeout_s))  # fmt: skip
        time.sleep(PAUSE_BETWEEN_TRIALS_S)
    client.close()
    pending = [t for t in trials if t.valid and t.plan.kind == "collaborative"]
    rescore_wait_s = aisle_settings.RESCORE_DEBOUNCE_S * 3 + 10

    def all_rescored() -> bool:
        for t in pending:
            if t.rescored_s is None:
                written = watcher.first_write_after(
                    redis_keys.user_list(t.plan.user_id), t.clicked_at
                )
                if written is None:
                    return False
                t.rescored_s = written - t.clicked_at
        return True

    if not wait_until(all_rescored, rescore_wait_s, interval_s=0.2):
        all_rescored()  # whatever arrived by the limit
    return FreshnessResult(trials, placement, limit, poll_interval_s, timeout_s, rescore_wait_s)


def count_fallbacks(status: int, body: bytes) -> dict[str, int]:
    """Load inspector (bench.load): answers the render path served without Redis."""
    return {"fallback": 1} if b'"source":"fallback"' in body else {}


def titles_of(skus: Sequence[str]) -> dict[str, str]:
    card_map = cards(None)
    return {sku: card_map[sku].title for sku in skus if sku in card_map}


def scoring_queue_idle() -> bool:
    """Nothing waiting on the `scoring` queue and nothing taken but unacknowledged (the Redis
    transport keeps those in its `unacked` hash until the late ack)."""
    client = writer_client()
    return client.llen("scoring") == 0 and client.hlen("unacked") == 0


def warm_up(base_url: str, write_key: str, watcher: KeyspaceWatcher, user_id: str,
            sku: str, unavailable_sku: str | None, timeout_s: float = 90.0) -> float:  # fmt: skip
    """Wait until the workers answer: an event applied, a re-score written, and a refresh run
    (which loads every serving model into the scoring worker, as in a long-running deployment).
    Returns the seconds it took."""
    from recs.candidates.tasks import refresh_lists_task

    started = time.monotonic()
    plan = TrialPlan("collaborative", f"warm-up-{uuid.uuid4().hex[:6]}", user_id, sku, sku)
    client = StorefrontClient(base_url, write_key, client_ip="10.250.0.9")
    clicked_at = time.time()
    client.post_events(
        [
            {
                "event_id": f"click-{plan.session_id}",
                "type": "click",
                "user_id": user_id,
                "session_id": plan.session_id,
                "product_id": sku,
            }
        ]
    )
    client.close()  # fmt: skip
    if not wait_until(lambda: _feature_applied(plan), timeout_s, interval_s=0.1):
        raise RuntimeError("the events worker did not apply an event")
    if not wait_until(
        lambda: watcher.first_write_after(redis_keys.user_list(user_id), clicked_at) is not None,
        timeout_s, interval_s=0.1,
    ):  # fmt: skip
        raise RuntimeError("the scoring worker did not re-score a list")
    if unavailable_sku:
        refresh_lists_task.delay([unavailable_sku])  # already out: loads models, changes nothing
        time.sleep(0.5)
        wait_until(scoring_queue_idle, timeout_s, interval_s=0.1)
    return time.monotonic() - started


def measure_apply(products: Sequence[str], count: int = 100) -> LatencySummary:
    """What an events worker does for one click, timed in this process with nothing else
    running: store it in the event log, then apply it to the online store (anonymous sessions,
    so no re-score is scheduled). The floor under the click-to-feature-store time."""
    from datetime import UTC, datetime

    from recs.events.records import EventRecord
    from recs.events.services import apply_event_batch

    run = uuid.uuid4().hex[:6]
    seconds = []
    for n in range(count):
        record = EventRecord(
            event_id=f"apply-{run}-{n}", event_type="click", occurred_at=datetime.now(tz=UTC),
            session_id=f"apply-{run}-{n}", product_sku=products[n % len(products)],
        )  # fmt: skip
        started = time.perf_counter()
        apply_event_batch(f"apply-{run}-{n}", [record], enqueued_at=time.time())
        seconds.append(time.perf_counter() - started)
    return LatencySummary.of(seconds[count // 10 :])  # the first tenth warms up
