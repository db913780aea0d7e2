"""storefront.demo / manage.py setup_demo: the demo's logins and storefront key, safe to re-run."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from recs.api_keys import authenticate_key
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_setup_demo_creates_logins_and_a_reusable_write_key(tmp_path):
    for n in range(3):
        EventFactory(event_id=f"a{n}", user_id="17850")
    EventFactory(event_id="b", user_id="12347")
    key_file = tmp_path / "key"
    call_command("setup_demo", "--customers", "1", "--key-file", str(key_file))
    users = get_user_model().objects
    assert users.get(username="demo").is_superuser
    assert {"12347", "17850"} <= set(users.values_list("username", flat=True))
    assert users.get(username="17850").check_password("shopper-demo")
    assert not users.get(username="17850").is_staff
    first = key_file.read_text().strip()
    assert authenticate_key(first).has_scope("write")
    call_command("setup_demo", "--customers", "1", "--key-file", str(key_file))
    assert key_file.read_text().strip() == first, "re-running keeps the key"
    assert oct(key_file.stat().st_mode)[-3:] == "600"
