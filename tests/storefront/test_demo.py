"""storefront.demo / manage.py setup_demo: the demo's logins, storefront key and experiment, safe
to re-run."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from merch.models import Experiment, Placement
from merch.services.experiments import VariantSpec, create_experiment, start_experiment
from recs.api_keys import authenticate_key
from recs.models import ServedList, VariantHourlyStats
from recs.serving import availability, catalog, fallback, merchandising
from tests.factories import EventFactory, StockFactory

pytestmark = pytest.mark.django_db


def test_setup_demo_creates_logins_and_a_reusable_write_key(tmp_path):
    for n in range(3):
        EventFactory(event_id=f"a{n}", user_id="17850")
    EventFactory(event_id="b", user_id="12347")
    key_file = tmp_path / "key"
    options = ["--customers", "1", "--key-file", str(key_file), "--experiment-shoppers", "0"]
    call_command("setup_demo", *options)
    users = get_user_model().objects
    assert users.get(username="demo").is_superuser
    assert {"12347", "17850"} <= set(users.values_list("username", flat=True))
    assert users.get(username="17850").check_password("shopper-demo")
    assert not users.get(username="17850").is_staff
    first = key_file.read_text().strip()
    assert authenticate_key(first).has_scope("write")
    call_command("setup_demo", *options)
    assert key_file.read_text().strip() == first, "re-running keeps the key"
    assert oct(key_file.stat().st_mode)[-3:] == "600"


@pytest.fixture
def stocked_shop(settings, tmp_path):
    """A dozen products in stock and the render path's in-process copies empty, as in a new web
    process (no candidate lists: the newest products in stock are served)."""
    settings.AISLE = {**settings.AISLE, "MODEL_ARTIFACT_DIR": tmp_path / "models"}
    for module in (availability, catalog, fallback, merchandising):
        module.clear()
    for n in range(12):
        StockFactory(product__sku=f"D{n}", on_hand=5)


def test_setup_demo_starts_one_home_page_experiment_with_simulated_shoppers(stocked_shop, tmp_path):
    id_file = tmp_path / "run" / "experiment_id"
    options = ["--key-file", str(tmp_path / "key"), "--experiment-shoppers", "40",
               "--experiment-id-file", str(id_file)]  # fmt: skip
    call_command("setup_demo", *options)
    experiment = Experiment.objects.get()
    assert id_file.read_text().strip() == str(experiment.pk)
    assert experiment.status == "running" and experiment.placement.key == "home"
    assert experiment.hypothesis
    assert [(g.metric, g.max_drop_percent) for g in experiment.guardrails.all()] == [
        ("revenue_per_shopper", 10)
    ]
    variants = list(experiment.variants.all())
    (control,) = [v for v in variants if v.is_control]
    assert control.strategy == experiment.placement.default_strategy
    (challenger,) = [v for v in variants if not v.is_control and not v.is_shadow]
    assert challenger.traffic_percent == 50
    (shadow,) = [v for v in variants if v.is_shadow]
    lists = ServedList.objects.filter(experiment_id=experiment.pk)
    assert lists.filter(is_shadow=False).count() == 40
    assert lists.filter(is_shadow=True, variant=shadow.name).count() == 40, "scored, no worker"
    stats = VariantHourlyStats.objects.filter(experiment_id=experiment.pk)
    assert {row.variant for row in stats} == {control.name, challenger.name, shadow.name}

    call_command("setup_demo", *options)
    assert Experiment.objects.get().pk == experiment.pk, "a re-run keeps the experiment"
    assert lists.count() == 80, "and simulates no second crowd into it"
    assert id_file.read_text().strip() == str(experiment.pk)


def test_setup_demo_leaves_a_live_experiment_of_the_merchandiser_alone(stocked_shop, tmp_path):
    theirs = create_experiment(
        "Theirs", Placement.objects.get(key="home"),
        [VariantSpec("control", "auto", 0, is_control=True), VariantSpec("b", "popular", 10)],
    )  # fmt: skip
    start_experiment(theirs)
    id_file = tmp_path / "experiment_id"
    id_file.write_text("999\n")
    call_command("setup_demo", "--key-file", str(tmp_path / "key"),
                 "--experiment-id-file", str(id_file))  # fmt: skip
    assert list(Experiment.objects.all()) == [theirs]
    assert not id_file.exists(), "no demo experiment, no dashboard to point at"
