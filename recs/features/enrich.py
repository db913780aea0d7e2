"""Turn event records into FeatureEvents the same way for the workers and for training."""

from collections.abc import Iterable, Sequence

from aisle.sql import in_values
from merch.selectors.catalog import product_categories
from recs.events.records import EventRecord
from recs.features.events import FeatureEvent
from recs.models import SessionLink


def session_links(session_ids: Iterable[str]) -> dict[str, str]:
    """user_id per linked session id."""
    rows = SessionLink.objects.filter(session_id__in=in_values(set(session_ids)))
    return dict(rows.values_list("session_id", "user_id"))


def enrich(
    records: Sequence[EventRecord], *, links: dict[str, str] | None = None
) -> list[FeatureEvent]:
    """Add each event's product category and, for anonymous events, the user of a linked
    session (from `links`, session -> user, when the caller has looked them up already)."""
    categories = product_categories({r.product_sku for r in records if r.product_sku})
    if links is None:
        links = session_links([r.session_id for r in records if r.session_id and not r.user_id])
    return [
        FeatureEvent.from_record(
            record,
            category=categories.get(record.product_sku, ""),
            linked_user_id=links.get(record.session_id, "") if not record.user_id else "",
        )
        for record in records
    ]
