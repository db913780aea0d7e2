"""The trust model: who may read a shopper's list or write their events (README, "Security")."""

import json
import time

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from recs.api_keys import create_api_key
from recs.experiments.attribution import rollup_experiment
from recs.shopper_session import signed_cookie_value
from recs.shopper_tokens import HEADER, mint_shopper_token, token_secret
from tests.recs.api.test_events import queued_events
from tests.recs.conftest import touch

pytestmark = pytest.mark.django_db

READ_URL = "/api/v1/recommendations"
EVENTS_URL = "/api/v1/events"


@pytest.fixture
def loyal_customer(shop):
    """Customer "loyal" has a collaborative list and bought C1 (whose bought-together list
    exists): a personal answer would name C1 in a reason."""
    touch(*["K1", "K2", "B1", "B2", "C2"] * 2, "C1", event_type="purchase", user_id="loyal",
          session_id="s-loyal")  # fmt: skip
    return "loyal"


@pytest.fixture
def publishable():
    _, plaintext = create_api_key("storefront", "publishable")
    return plaintext


def comparable(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("rec_id", "served_at", "generated_at",
                                                       "age_s")}  # fmt: skip


def post_purchase(client, user_id: str, **headers):
    params = {"placement": "post_purchase", "user_id": user_id}
    return client.get(READ_URL, params, **headers)


# --- reads ---------------------------------------------------------------------------------


def test_an_anonymous_caller_cannot_tell_a_known_customer_from_an_unknown_id(
    client, loyal_customer
):
    known = post_purchase(client, loyal_customer)
    unknown = post_purchase(client, "99999")
    assert known.status_code == unknown.status_code == 200
    assert comparable(known.json()) == comparable(unknown.json())
    assert known.json()["tier"] == "anonymous"
    reasons = " ".join(item["reason"] for item in known.json()["items"])
    assert "Candles 1" not in reasons, "no reason names what the customer bought"


def test_a_secret_read_key_gets_the_personal_list(client, loyal_customer):
    _, reader = create_api_key("shop server", "secret", ["read"])
    body = post_purchase(client, loyal_customer, HTTP_AUTHORIZATION=f"Bearer {reader}").json()
    assert body["tier"] == "collaborative"
    assert any("Candles 1" in item["reason"] for item in body["items"])


def test_a_publishable_key_cannot_read(client, loyal_customer, publishable):
    response = post_purchase(client, loyal_customer, HTTP_AUTHORIZATION=f"Bearer {publishable}")
    assert response.status_code == 403
    assert "publishable key cannot read" in response.json()["error"]["message"]


def test_a_shopper_token_reads_its_own_list_until_it_expires(client, loyal_customer):
    token = mint_shopper_token(user_id=loyal_customer, ttl_s=60)
    own = client.get(READ_URL, {"placement": "post_purchase"}, **{f"HTTP_{header()}": token})
    assert own.status_code == 200 and own.json()["tier"] == "collaborative"
    other = post_purchase(client, "12347", **{f"HTTP_{header()}": token})
    assert other.status_code == 403, "a token speaks only for its own shopper"

    expired = jwt.encode(
        {"sub": loyal_customer, "aud": "aisle", "iat": int(time.time()) - 120,
         "exp": int(time.time()) - 60},
        token_secret(), algorithm="HS256",
    )  # fmt: skip
    response = client.get(READ_URL, {"placement": "post_purchase"},
                          **{f"HTTP_{header()}": expired})  # fmt: skip
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


NOW = int(time.time())  # at collection: tokens below live an hour, the suite takes minutes
GUESSED_SECRET = b"a-guessed-secret-of-enough-length-000000"


@pytest.mark.parametrize(
    ("claims", "secret", "message"),
    [
        ({"sub": "loyal", "aud": "aisle"}, None, "invalid"),  # no iat, no exp
        ({"sub": "loyal", "aud": "other", "iat": NOW, "exp": NOW + 3600}, None, "another audience"),
        ({"sub": "loyal", "aud": "aisle", "iat": NOW, "exp": NOW + 3600}, GUESSED_SECRET, "invalid"),
        ({"sub": "loyal", "aud": "aisle", "iat": NOW, "exp": NOW + 10 * 24 * 3600}, None,
         "longer than"),
    ],
)  # fmt: skip
def test_forged_and_overlong_tokens_are_refused(client, loyal_customer, claims, secret, message):
    token = jwt.encode(claims, secret or token_secret(), algorithm="HS256")
    response = client.get(READ_URL, {"placement": "home"}, **{f"HTTP_{header()}": token})
    assert response.status_code == 401
    assert message in response.json()["error"]["message"]


def test_the_shoppers_own_session_cookie_reads_its_own_session(client, shop):
    touch("C1", "C2", session_id="s-own")
    client.cookies["aisle_sid"] = signed_cookie_value("s-own")
    own = client.get(READ_URL, {"placement": "home"}).json()
    assert own["tier"] == "content"
    assert client.get(READ_URL, {"placement": "home", "session_id": "s-other"}).status_code == 403
    client.cookies["aisle_sid"] = "s-own"  # unsigned: proves nothing
    assert client.get(READ_URL, {"placement": "home", "session_id": "s-own"}).json()["tier"] == (
        "anonymous"
    )


def test_a_signed_in_customer_reads_their_own_list_with_their_session(client, loyal_customer):
    User.objects.create_user(loyal_customer, password="pw-loyal-1")
    client.force_login(User.objects.get(username=loyal_customer))
    assert post_purchase(client, loyal_customer).json()["tier"] == "collaborative"
    assert post_purchase(client, "u-someone-else").status_code == 403


# --- writes --------------------------------------------------------------------------------


def view(event_id: str, **fields) -> dict:
    return {"event_id": event_id, "type": "view", "product_id": "C1", **fields}


def test_a_publishable_key_without_a_token_cannot_send_events(shop, publishable):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}")
    response = api.post(EVENTS_URL, [view("e1", session_id="s-1")], format="json")
    assert response.status_code == 401
    assert HEADER in response.json()["error"]["message"]
    assert queued_events() == []


def test_a_publishable_key_sends_only_its_tokens_shoppers_events(shop, publishable):
    api = APIClient()
    token = mint_shopper_token(session_id="s-page", user_id="12347")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}", **{f"HTTP_{header()}": token})
    response = api.post(
        EVENTS_URL,
        [
            view("mine"),
            {**view("cart", type="add_to_cart"), "user_id": "12347"},
            {**view("forged", type="add_to_cart"), "user_id": "17850"},
            view("other-session", session_id="s-victim"),
        ],
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["reason"].split(":")[0]) for r in body["rejected"]] == [
        (2, "user_id"),
        (3, "session_id"),
    ]
    queued = queued_events()
    assert {(r.event_id, r.user_id, r.session_id) for r in queued} == {
        ("mine", "12347", "s-page"),
        ("cart", "12347", "s-page"),
    }


def test_a_session_only_token_cannot_write_user_level_events(shop, publishable):
    api = APIClient()
    token = mint_shopper_token(session_id="s-anon")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}", **{f"HTTP_{header()}": token})
    response = api.post(EVENTS_URL, [view("e1", user_id="12347")], format="json")
    assert response.status_code == 400
    assert "user_id" in response.json()["error"]["details"][0]["reason"]


def test_one_address_cannot_starve_other_shoppers_of_the_public_key(shop, publishable, settings):
    settings.AISLE = {**settings.AISLE, "EVENTS_THROTTLE_RATE": "30/min"}
    cache.clear()
    attacker = APIClient(REMOTE_ADDR="203.0.113.66")
    attacker.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}",
                         **{f"HTTP_{header()}": mint_shopper_token(session_id="s-bot")})  # fmt: skip
    codes = [attacker.post(EVENTS_URL, [view(f"bot-{n}")], format="json").status_code
             for n in range(31)]  # fmt: skip
    assert codes[:30] == [202] * 30 and codes[30] == 429
    shopper = APIClient(REMOTE_ADDR="198.51.100.7")
    shopper.credentials(HTTP_AUTHORIZATION=f"Bearer {publishable}",
                        **{f"HTTP_{header()}": mint_shopper_token(user_id="12347")})  # fmt: skip
    purchase = {"event_id": "real", "type": "purchase", "product_id": "C1", "price": "4.95"}
    assert shopper.post(EVENTS_URL, [purchase], format="json").status_code == 202


# --- hostile input and the web ------------------------------------------------------------


def test_deeply_nested_json_is_a_400_not_a_500(shop):
    _, writer = create_api_key("server", "secret", ["write"])
    body = "[" * 5000 + "]" * 5000
    response = Client().post(EVENTS_URL, body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {writer}")  # fmt: skip
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
    moderately = {"events": [view("e1", session_id="s", context={"a": [[[[[[[[[[]]]]]]]]]]})]}
    nested = Client().post(EVENTS_URL, json.dumps(moderately), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {writer}")  # fmt: skip
    assert nested.status_code == 202, "nesting within JSON_MAX_DEPTH is accepted"


@pytest.fixture
def fast_hashing(settings):
    """Thirty checked passwords at PBKDF2's real cost would take most of a minute."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("login_url", ["/admin/login/", "/login/"])
def test_thirty_wrong_passwords_lock_the_login(client, fast_hashing, login_url):
    User.objects.create_user("12347", password="right-password-1", is_staff=True)
    codes = [client.post(login_url, {"username": "12347", "password": f"wrong-{n}"}).status_code
             for n in range(30)]  # fmt: skip
    assert codes[-1] == 429
    right = client.post(login_url, {"username": "12347", "password": "right-password-1"})
    assert right.status_code == 429, "locked out: the right password does not get in either"
    assert "_auth_user_id" not in client.session


def test_a_login_from_another_address_is_locked_for_that_username_too(client, fast_hashing):
    User.objects.create_user("12347", password="right-password-1")
    for n in range(10):
        client.post("/login/", {"username": "12347", "password": f"wrong-{n}"},
                    REMOTE_ADDR="203.0.113.9")  # fmt: skip
    elsewhere = Client(REMOTE_ADDR="198.51.100.3")
    response = elsewhere.post("/login/", {"username": "12347", "password": "right-password-1"})
    assert response.status_code == 429


def test_pages_carry_a_content_security_policy_without_inline_script(client, admin_client, shop):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy
    for page in (client.get("/"), client.get("/api/v1/docs/"), admin_client.get("/admin/"),
                 admin_client.get("/admin/recs/health/")):  # fmt: skip
        html = page.content.decode()
        assert page.status_code == 200
        assert "<script>" not in html, "no inline script: the policy would block it"


def test_a_forged_click_with_someone_elses_rec_id_counts_for_nobody(shop, settings):
    """rec_ids are handed to anonymous callers; only the shopper it was served to counts."""
    from merch.models import Placement
    from merch.selectors.experiments import experiment_by_id
    from merch.services.experiments import VariantSpec, create_experiment, start_experiment
    from recs.events.records import EventRecord
    from recs.events.services import apply_event_batch
    from recs.experiments.served import drain_served_log
    from recs.experiments.tasks import queue_shadow_scoring
    from recs.models import VariantHourlyStats
    from recs.serving.recommend import recommend
    from recs.serving.types import RecommendationContext

    settings.AISLE = {**settings.AISLE, "SHADOW_SAMPLE_RATE": 0.0}
    experiment = create_experiment(
        "Home", Placement.objects.get(key="home"),
        [VariantSpec("control", "popular", 0, is_control=True),
         VariantSpec("trending", "trending", 50)],
    )  # fmt: skip
    start_experiment(experiment)
    served = recommend(RecommendationContext(placement="home", session_id="s-victim"))
    drain_served_log(queue_shadow_scoring)
    from django.utils import timezone

    forged = EventRecord(
        event_id="forged-click", event_type="click", occurred_at=timezone.now(),
        user_id="", session_id="s-attacker", product_sku=served.items[0].sku,
        context={"rec_id": served.rec_id},
    )  # fmt: skip
    apply_event_batch("b-forged", [forged], rescore=False)
    rollup_experiment(experiment_by_id(experiment.pk))
    assert sum(row.clicks for row in VariantHourlyStats.objects.all()) == 0


def header() -> str:
    return HEADER.upper().replace("-", "_")
