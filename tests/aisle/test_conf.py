"""aisle.conf: the AISLE settings block, its defaults, its check, and what it changes."""

import os
import subprocess
import sys

from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from aisle.conf import DEFAULTS, aisle_settings
from tests.config.test_settings import BASE_DIR


def test_a_name_the_block_leaves_out_has_its_documented_default():
    block = {k: v for k, v in settings.AISLE.items() if k != "SERVING_MAX_LIMIT"}
    with override_settings(AISLE=block):
        assert aisle_settings.SERVING_MAX_LIMIT == DEFAULTS["SERVING_MAX_LIMIT"] == 50
    with override_settings(AISLE={**settings.AISLE, "SERVING_MAX_LIMIT": 7}):
        assert aisle_settings.SERVING_MAX_LIMIT == 7


def test_a_host_without_any_block_gets_every_default(settings):
    del settings.AISLE
    assert aisle_settings.EVENT_WEIGHTS["purchase"] == 8.0
    assert aisle_settings.MODEL_ARTIFACT_DIR.parts[-2:] == ("var", "aisle-models")


def test_an_unknown_name_is_an_error_not_a_silent_default():
    with override_settings(AISLE={**settings.AISLE, "SERVING_MAX_LIMTI": 7}):
        errors = [e for e in run_checks() if e.id == "aisle.E001"]
    assert [e.msg for e in errors] == ["Unknown Aisle setting 'SERVING_MAX_LIMTI'"]
    try:
        aisle_settings.SERVING_MAX_LIMTI  # noqa: B018
    except AttributeError as error:
        assert "SERVING_MAX_LIMTI" in str(error)
    else:
        raise AssertionError("an unknown name must not read as a value")


def test_the_key_prefix_starts_every_redis_key():
    code = (
        "import django; django.setup(); from recs import redis_keys as k; "
        "print(k.user_list('u1'), k.UNAVAILABLE, k.entity_feature('user', 'cart', 'u1'))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_KEY_PREFIX": "shop2:"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "shop2:c:user:u1", "shop2:{avail}:unavailable", "shop2:f:user:cart:{u1}",
    ]  # fmt: skip


def test_a_host_with_32_bit_keys_gets_no_migrations_written_into_the_apps():
    code = (
        "import django; from django.conf import settings; "
        "settings.DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('makemigrations', 'merch', 'recs', '--check', '--dry-run')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
