"""Shadow variants: scored for the same requests as the live ones, off the render path, logged
and never shown, so that a challenger model is compared with what shoppers really did next."""

import hashlib
import logging

from merch.selectors.experiments import experiment_by_id
from recs import redis_keys
from recs.candidates.store import writer_client
from recs.experiments.served import served_list_from
from recs.features.online import get_online
from recs.models import ModelVersion, ServedList
from recs.serving.experiments import STRATEGIES, as_serving_strategy
from recs.serving.recommend import recommend
from recs.serving.types import RecommendationContext
from recs.training.registry import serving_learner_by_key

logger = logging.getLogger(__name__)


def _history(context: RecommendationContext) -> list[str]:
    """What the shopper touched, oldest first, from the online feature store."""
    skus: list[str] = []
    if context.user_id:
        user = get_online("user", context.user_id, ["purchased_products", "recently_viewed"])
        skus += [*reversed(user["purchased_products"]), *reversed(user["recently_viewed"])]
    if context.session_id:
        session = get_online("session", context.session_id, ["recently_viewed"])
        skus += list(reversed(session["recently_viewed"]))
    return list(dict.fromkeys(skus))


def _model_list(key: str, context: RecommendationContext, k: int) -> tuple[list[str], str]:
    """A learner's own top k for the shopper, scored here (a worker may call a model)."""
    learner = serving_learner_by_key(key)
    if learner is None:
        return [], ""
    exclude = {context.product_sku, *context.cart_skus} - {""}
    ranked = learner.recommend(
        context.user_id or None, _history(context), k * 3, exclude=exclude,
        context={"country": context.country, "device": context.device},
    )  # fmt: skip
    skus = [sku for sku, _ in ranked]
    flags = writer_client().smismember(redis_keys.UNAVAILABLE, skus) if skus else []
    available = [sku for sku, flag in zip(skus, flags, strict=True) if not flag][:k]
    version = ModelVersion.objects.filter(key=key, status="serving").values_list("pk", flat=True)
    return available, f"{key}#{version.first()}" if version else key


def score_shadows(context: RecommendationContext, served: dict, shadow_names: list[str]) -> int:
    """Score each named shadow variant for the request behind `served` (a served-list entry)
    and log its list beside it; returns how many lists were logged."""
    experiment = experiment_by_id(served["experiment_id"])
    if experiment is None or _erased_since(served):
        return 0
    k = len(served["skus"]) or context.limit or 8
    rows: list[ServedList] = []
    for variant in experiment.variants:
        if not variant.is_shadow or variant.name not in shadow_names:
            continue
        strategy, model_key = as_serving_strategy(variant.strategy)
        if model_key or variant.strategy not in STRATEGIES:
            skus, model_version = _model_list(variant.strategy, context, k)
        else:
            result = recommend(
                RecommendationContext(
                    **{**context.__dict__, "strategy_override": strategy, "limit": k}
                )
            )
            skus, model_version = [item.sku for item in result.items], result.model_version
        entry = {**served, "rec_id": shadow_rec_id(served["rec_id"], variant.name),
                 "variant": variant.name, "skus": skus, "model_version": model_version,
                 "source": "shadow"}  # fmt: skip
        rows.append(served_list_from(entry, is_shadow=True, shadow_of=served["rec_id"]))
    ServedList.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def shadow_rec_id(served_rec_id: str, variant: str) -> str:
    """One id per shown list and shadow variant: a list scored twice (the served log is drained
    at least once, and two drains may overlap) is logged once, since rec_id is unique."""
    return hashlib.sha256(f"{served_rec_id}:{variant}".encode()).hexdigest()[:32]


def _erased_since(served: dict) -> bool:
    """Whether the shopper of a queued request was erased after it was served: scoring it now
    would write them back into the served-list log."""
    from recs.erasure import erased_at_by_user

    user_id = served.get("user_id", "")
    erased_at = erased_at_by_user([user_id]).get(user_id) if user_id else None
    return erased_at is not None and erased_at.timestamp() >= served["served_at"]
