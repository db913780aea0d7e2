"""A realistic event stream, applied out of order with duplicates, shows zero online/offline skew."""

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from recs import redis_keys
from recs.events.records import EventRecord
from recs.events.services import apply_event_batch
from recs.features.skew import check_skew, sample_entities, values_agree
from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db

EVENT_TYPES = ["view"] * 6 + ["click"] * 3 + ["add_to_cart"] * 2 + ["remove_from_cart", "purchase"]


def random_stream(count: int, seed: int = 7) -> list[EventRecord]:
    rng = random.Random(seed)
    now = datetime.now(tz=UTC)
    records = []
    for n in range(count):
        event_type = rng.choice(EVENT_TYPES)
        anonymous = rng.random() < 0.3
        session = f"s-{rng.randrange(40)}"
        records.append(
            EventRecord(
                event_id=f"rand-{seed}-{n}",
                event_type=event_type,
                occurred_at=now - timedelta(hours=rng.uniform(0, 400)),
                user_id="" if anonymous else f"u-{rng.randrange(15)}",
                session_id=session,
                product_sku=f"P{rng.randrange(25)}",
                quantity=rng.randint(1, 3) if event_type in ("purchase", "add_to_cart") else None,
                price=Decimal(f"{rng.randint(1, 900)}.{rng.randint(0, 99):02d}")
                if event_type == "purchase"
                else None,
                order_id=f"o-{rng.randrange(60)}" if event_type == "purchase" else "",
                country=rng.choice(["Germany", "France", "United Kingdom", ""]),
                device=rng.choice(["mobile", "desktop", ""]),
            )
        )
    return records


@pytest.fixture
def catalog():
    categories = [CategoryFactory(path=f"c{i}", slug=f"c{i}") for i in range(4)]
    for i in range(25):
        ProductFactory(sku=f"P{i}", category=categories[i % 4])


def test_a_shuffled_duplicated_stream_has_zero_skew(catalog):
    records = random_stream(1500)
    rng = random.Random(1)
    shuffled = records[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 100] for i in range(0, len(shuffled), 100)]
    for index, batch in enumerate(batches):
        apply_event_batch(f"batch-{index}", batch)
    # Redelivery of one batch, and copies of events arriving in another batch, change nothing.
    apply_event_batch("batch-3", batches[3])
    apply_event_batch("copies", rng.sample(records, 200))
    report = check_skew(sample_entities(50), now_s=time.time())
    assert report.values_compared > 500
    assert report.mismatches == []


def test_the_check_detects_a_drifted_online_value(catalog, clean_redis):
    apply_event_batch("b", random_stream(300))
    clean_redis.delete(redis_keys.TRENDING_SCORES)
    report = check_skew(sample_entities(50))
    assert {m.feature for m in report.mismatches} == {"trending_score"}


def test_feature_skew_command_reports_agreement_and_fails_on_drift(catalog, clean_redis, capsys):
    apply_event_batch("b", random_stream(300))
    call_command("feature_skew", "--sample", "10")
    assert "No skew" in capsys.readouterr().out
    clean_redis.delete(redis_keys.TRENDING_SCORES)
    with pytest.raises(CommandError, match="mismatches"):
        call_command("feature_skew", "--sample", "10")


@pytest.mark.parametrize(
    ("online", "offline", "agree"),
    [
        (1.0, 1.0 + 1e-9, True),
        (1.0, 1.01, False),
        ({"a": 1.0}, {"a": 1.0, "b": 0.5}, False),
        (["a", "b"], ["b", "a"], False),
    ],
)
def test_values_agree_within_tolerance_only(online, offline, agree):
    assert values_agree(online, offline) is agree


def test_chunks_mixing_applied_and_fresh_events_have_zero_skew(catalog, monkeypatch):
    """A key's ops are merged per script call: the ops of events applied before (their markers
    set) must drop out of the merge, over calls streamed back to back."""
    from recs.features import online
    from recs.features.enrich import enrich

    monkeypatch.setattr(online, "APPLY_CHUNK_SIZE", 7)
    records = random_stream(600, seed=11)
    rng = random.Random(2)
    online.apply_events(enrich(rng.sample(records, 250)))
    for start in range(0, len(records), 120):
        apply_event_batch(f"mixed-{start}", records[start : start + 120])
    report = check_skew(sample_entities(50), now_s=time.time())
    assert report.values_compared > 300
    assert report.mismatches == []


def test_events_apply_after_redis_forgot_its_scripts(catalog, monkeypatch):
    """A restarted Redis answers NOSCRIPT to the calls already sent: they did not run, and run
    once the script is loaded again."""
    from recs.features import online

    monkeypatch.setattr(online, "APPLY_CHUNK_SIZE", 10)
    records = random_stream(60, seed=5)
    apply_event_batch("before", records[:30])
    online.redis_client().script_flush()
    apply_event_batch("after", records[30:])
    report = check_skew(sample_entities(50), now_s=time.time())
    assert report.mismatches == []
    assert online.apply_events([]) == 0
