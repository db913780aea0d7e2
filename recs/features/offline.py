"""Offline, point-in-time feature values computed from the event log (for training sets)."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Q

from recs.events.selectors import event_records
from recs.features.definitions import DerivedFeature, Feature, resolve
from recs.features.enrich import enrich
from recs.features.events import FeatureEvent
from recs.features.online import finish_values
from recs.models import SessionLink


def _entity_filter(entity: str, entity_ids: set[str]) -> Q:
    if entity == "user":
        linked = SessionLink.objects.filter(user_id__in=entity_ids).values_list("session_id")
        return Q(user_id__in=entity_ids) | Q(user_id="", session_id__in=linked)
    if entity == "session":
        return Q(session_id__in=entity_ids)
    if entity == "product":
        return Q(product_sku__in=entity_ids)
    if entity == "segment":
        if "all" in entity_ids:
            return Q()
        countries = {i.split(":", 1)[1] for i in entity_ids if i.startswith("country:")}
        devices = {i.split(":", 1)[1] for i in entity_ids if i.startswith("device:")}
        return Q(country__in=countries) | Q(device__in=devices)
    raise KeyError(entity)


def get_historical(
    rows: Iterable[tuple[str, str, datetime]], names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Feature values for (entity, entity_id, as_of) rows, using only events up to as_of.

    Returns one dict per row, in order. `names` are the entity's feature names (all when None);
    rows of different entities may be mixed only when names is None.
    """
    rows = list(rows)
    by_entity: dict[str, list[int]] = defaultdict(list)
    for index, (entity, _, _) in enumerate(rows):
        by_entity[entity].append(index)
    results: list[dict[str, Any]] = [{} for _ in rows]
    for entity, indexes in by_entity.items():
        requested = resolve(entity, names)
        stored: dict[str, Feature] = {}
        for feature in requested:
            inputs = (
                resolve(entity, feature.inputs)
                if isinstance(feature, DerivedFeature)
                else [feature]
            )
            stored.update({item.name: item for item in inputs})
        entity_ids = {rows[i][1] for i in indexes}
        latest = max(rows[i][2] for i in indexes)
        events = enrich(
            event_records(_entity_filter(entity, entity_ids) & Q(occurred_at__lte=latest))
        )
        per_entity: dict[str, list[FeatureEvent]] = defaultdict(list)
        for event in events:
            for entity_id in event.entity_ids(entity):
                if entity_id in entity_ids:
                    per_entity[entity_id].append(event)
        for i in indexes:
            _, entity_id, as_of = rows[i]
            as_of_s = as_of.timestamp()
            visible = [e for e in per_entity.get(entity_id, []) if e.ts <= as_of_s]
            values = {
                name: feature.aggregation.offline(
                    [e for e in visible if feature.counts(e)], as_of_s
                )
                for name, feature in stored.items()
            }
            results[i] = finish_values(requested, values)
    return results
