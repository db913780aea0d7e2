"""recs.learners.popularity: global, segment and category lists, and trending's decay."""

import joblib
import numpy as np
import pytest

from recs.learners.base import CatalogItem, Interactions
from recs.learners.popularity import (
    HALF_LIFE_BOUNDS_H,
    MIN_SEGMENT_ITEMS,
    DemographicLearner,
    PopularityLearner,
    TrendingLearner,
    hour_band,
)

HOUR = 3600.0
DAY = 24 * HOUR

CATALOG = [
    CatalogItem("A", "Red heart lantern", category_path="home/candles"),
    CatalogItem("B", "White heart lantern", category_path="home/candles"),
    CatalogItem("C", "Regency cake stand", category_path="kitchen/baking"),
    CatalogItem("D", "Jumbo shopper bag", category_path="bags"),
    CatalogItem("E", "Pink cake tin", category_path="kitchen/baking"),
    CatalogItem("F", "Wooden frame", category_path="home/frames"),
]


def events(rows, kind="purchase"):
    """rows: (user, item, time in seconds, country)."""
    return Interactions.from_columns(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows],
        event_types=[r[4] if len(r) > 4 else kind for r in rows],
        timestamps=[r[2] for r in rows], countries=[r[3] for r in rows],
    )  # fmt: skip


def many(item, n, t, country, kind="purchase"):
    return [(f"{item}{country}{i}", item, t, country, kind) for i in range(n)]


# UK buys A and B, Germany buys D (most of all) and C; F once; E bought by nobody.
SALES = events(
    many("A", 8, 1 * DAY, "UK") + many("B", 7, 1 * DAY, "UK")
    + many("D", 12, 2 * DAY, "Germany") + many("C", 3, 2 * DAY, "Germany")
    + many("F", 1, 3 * DAY, "")
)  # fmt: skip


def skus(ranked):
    return [sku for sku, _ in ranked]


def test_popularity_ranks_globally_and_per_country():
    learner = PopularityLearner().fit(SALES, CATALOG)
    assert skus(learner.popular(None, 3)) == ["D", "A", "B"]
    assert skus(learner.popular("country:UK", 2)) == ["A", "B"]
    assert skus(learner.popular("country:Germany", 5))[:2] == ["D", "C"]
    assert "country:" not in learner.segment_names()  # events without a country count globally only


def test_popularity_lists_every_level_of_a_category_path():
    learner = PopularityLearner().fit(SALES, CATALOG)
    assert skus(learner.segment_lists["category:home"]) == ["A", "B", "F"]
    assert skus(learner.segment_lists["category:home/candles"]) == ["A", "B"]
    assert skus(learner.segment_lists["category:home/frames"]) == ["F"]
    assert "category:kitchen/baking" in learner.segment_names()


def test_popularity_backfills_a_short_or_unknown_segment_from_the_global_list():
    learner = PopularityLearner().fit(SALES, CATALOG)
    assert skus(learner.popular("country:Nowhere", 1)) == ["D"]
    assert skus(learner.popular("category:home/frames", 3)) == ["F", "D", "A"]
    assert skus(learner.popular("country:UK", 2, exclude={"A"})) == ["B", "D"]


def test_popularity_lists_per_hour_band():
    rows = many("A", 3, 8 * HOUR, "UK") + many("B", 2, 20 * HOUR, "UK")
    learner = PopularityLearner().fit(events(rows), CATALOG)
    assert hour_band(8) == "morning"
    assert skus(learner.segment_lists["hour:morning"]) == ["A"]
    assert skus(learner.segment_lists["hour:evening"]) == ["B"]


def test_popularity_weighs_event_kinds():
    rows = many("A", 5, DAY, "UK", kind="view") + many("B", 1, DAY, "UK", kind="purchase")
    learner = PopularityLearner().fit(events(rows), CATALOG)
    assert skus(learner.popular(None, 2)) == ["B", "A"]  # 8 for a purchase beats 5 views
    by_views = PopularityLearner(event_weights={"view": 1.0}).fit(events(rows), CATALOG)
    assert skus(by_views.popular(None, 2)) == ["A"]  # unweighted kinds do not count


def test_popularity_keeps_only_list_size_items_per_segment():
    learner = PopularityLearner(list_size=2).fit(SALES, CATALOG)
    assert len(learner.global_list) == 2
    assert all(len(ranked) <= 2 for ranked in learner.segment_lists.values())
    assert skus(learner.segment_lists["category:home"]) == ["A", "B"]


def test_popularity_recent_fraction_keeps_only_the_end_of_the_span():
    rows = many("A", 10, 0.0, "UK") + many("B", 2, 95 * DAY, "UK") + many("C", 1, 100 * DAY, "UK")
    assert skus(PopularityLearner().fit(events(rows), CATALOG).popular(None, 1)) == ["A"]
    recent = PopularityLearner(recent_fraction=0.1).fit(events(rows), CATALOG)
    assert skus(recent.popular(None, 5)) == ["B", "C"]


def test_trending_derives_its_half_life_from_the_span_of_the_data():
    def fitted(span_s):
        rows = many("A", 2, 0.0, "UK") + many("B", 2, span_s, "UK")
        return TrendingLearner().fit(events(rows), CATALOG).fitted_half_life_hours

    month, year, decades = fitted(30 * DAY), fitted(365 * DAY), fitted(20 * 365 * DAY)
    assert month == pytest.approx(0.05 * 30 * 24)
    assert month < year <= decades == HALF_LIFE_BOUNDS_H[1]
    assert fitted(2 * HOUR) == HALF_LIFE_BOUNDS_H[0]
    by_fraction = TrendingLearner(half_life_fraction=0.1).fit(
        events(many("A", 2, 0.0, "UK") + many("B", 2, 20 * 365 * DAY, "UK")), CATALOG
    )
    assert by_fraction.fitted_half_life_hours == pytest.approx(0.1 * 20 * 365 * 24)


@pytest.mark.parametrize("span_days", [30, 20 * 365])
def test_trending_ranks_recent_sales_first_whatever_the_span(span_days):
    end = span_days * DAY
    rows = many("A", 10, 0.0, "UK") + many("B", 3, end - DAY, "UK") + many("C", 1, end, "UK")
    learner = TrendingLearner().fit(events(rows), CATALOG)
    assert skus(learner.recommend(None, [], 3)) == ["B", "C", "A"]
    assert skus(PopularityLearner().fit(events(rows), CATALOG).popular(None, 1)) == ["A"]


def test_trending_takes_an_explicit_half_life():
    learner = TrendingLearner(half_life_hours=2).fit(SALES, CATALOG)
    assert learner.fitted_half_life_hours == 2
    assert skus(learner.recommend(None, [], 1)) == ["F"]  # one sale, but a day after the rest
    daily = TrendingLearner(half_life_hours=24).fit(SALES, CATALOG)
    assert skus(daily.recommend(None, [], 1)) == ["D"]  # 12 sales halved beat one


def test_demographic_picks_the_visitors_segment_once_it_has_enough_items():
    rows = [(f"u{i}", f"S{i:02d}", DAY, "UK") for i in range(MIN_SEGMENT_ITEMS)] + many(
        "D", 50, DAY, "Germany"
    )
    learner = DemographicLearner().fit(events(rows), CATALOG)
    assert skus(learner.recommend(None, [], 1, context={"country": "UK"})) == ["S00"]
    assert skus(learner.recommend(None, [], 1, context={"country": "Germany"})) == ["D"]  # short
    assert skus(learner.recommend(None, [], 1, context={"hour": "3"})) == ["D"]


def test_popularity_learners_have_searchable_keywords_and_survive_joblib(tmp_path):
    for cls in (PopularityLearner, TrendingLearner, DemographicLearner):
        assert cls.search_space
        for name, values in cls.search_space.items():
            learner = cls(**{name: values[-1]}).fit(SALES, CATALOG)
            path = tmp_path / f"{cls.key}.joblib"
            joblib.dump(learner, path)
            assert joblib.load(path).popular("country:UK", 3) == learner.popular("country:UK", 3)


def test_popularity_fits_empty_data():
    empty = SALES.select(np.zeros(len(SALES), dtype=bool))
    learner = TrendingLearner().fit(empty, CATALOG)
    assert learner.popular(None, 3) == []
    assert learner.recommend(None, ["A"], 3) == []
