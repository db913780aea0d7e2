"""recs.features.definitions: every feature is declared once and documented."""

from pathlib import Path

from django.conf import settings

from recs.features.definitions import FEATURES, DerivedFeature, resolve


def test_every_feature_is_documented():
    doc = (Path(settings.BASE_DIR) / "docs" / "FEATURES.md").read_text()
    missing = [f"{e}.{n}" for (e, n) in FEATURES if f"| {e} | `{n}` |" not in doc]
    assert missing == []


def test_derived_features_only_read_features_of_their_own_entity():
    for feature in FEATURES.values():
        if isinstance(feature, DerivedFeature):
            assert resolve(feature.entity, feature.inputs)


def test_the_features_the_issue_names_exist():
    for entity, name in [
        ("user", "interaction_count"), ("user", "session_count_168h"),
        ("user", "avg_cart_value_2160h"), ("user", "category_affinity"),
        ("user", "recently_viewed"), ("user", "cart"), ("product", "views_1h"),
        ("product", "purchases_24h"), ("product", "view_to_purchase_rate_24h"),
        ("product", "trending_score"), ("segment", "popularity"),
    ]:  # fmt: skip
        assert (entity, name) in FEATURES
