"""config.settings: environment switches, production hardening, Celery wiring."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from aisle.conf import aisle_settings
from config.celery import app as celery_app

BASE_DIR = str(settings.BASE_DIR)


def run_manage(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_DEBUG")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="false",
        SECRET_KEY="p9#Lw2@vQz7!mK4$tR8^yN1&cX5*bH3(jD6)fG0-sA+eU4%nW8~kP2=rT6",
        ALLOWED_HOSTS="shop.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_fails_the_deploy_check_so_the_check_is_real():
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr + result.stdout


def test_with_nothing_set_the_settings_are_production_safe(tmp_path):
    """No DJANGO_DEBUG, no SECRET_KEY, no proxy settings: what a shop gets by default."""
    script = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_SECONDS > 0, s.SECURE_SSL_REDIRECT, "
        "len(s.SECRET_KEY) >= 50, 'insecure' in s.SECRET_KEY)"
    )
    assert "SECRET_KEY" not in os.environ
    first = run_manage(["shell", "-c", script], AISLE_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1].split() == ["False", "None", "False", "False", "True", "True", "True",
                                    "False"]  # fmt: skip
    key_file = tmp_path / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = run_manage(["shell", "-c", "from django.conf import settings as s; print(s.SECRET_KEY)"],
                       AISLE_VAR_DIR=str(tmp_path))  # fmt: skip
    kept = again.stdout.splitlines()[-1]
    assert kept == key_file.read_text().strip(), "the key is kept, not rotated"


def test_a_proxy_header_is_trusted_only_when_configured():
    script = "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)"
    trusted = run_manage(["shell", "-c", script], TRUSTED_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert "('HTTP_X_FORWARDED_PROTO', 'https')" in trusted.stdout


def test_database_url_switches_to_postgresql():
    result = run_manage(
        ["shell", "-c", "from django.conf import settings; print(settings.DATABASES['default'])"],
        DATABASE_URL="postgres://aisle:secret@127.0.0.1:5432/aisle",
    )
    assert result.returncode == 0, result.stderr
    assert "django.db.backends.postgresql" in result.stdout
    assert "'NAME': 'aisle'" in result.stdout


def test_without_database_url_the_default_is_a_sqlite_file():
    result = run_manage(
        ["shell", "-c", "from django.conf import settings; print(settings.DATABASES['default'])"]
    )
    assert "sqlite3" in result.stdout and "db.sqlite3" in result.stdout


def test_tests_use_the_private_redis_not_the_default_one():
    assert os.environ["AISLE_TEST_REDIS_URL"] == aisle_settings.REDIS_URL
    assert ":6379/" not in aisle_settings.REDIS_URL
    assert settings.CACHES["default"]["LOCATION"] == aisle_settings.REDIS_URL
    assert celery_app.conf.broker_url == aisle_settings.REDIS_URL


def test_a_redis_cluster_needs_a_plain_redis_for_the_cache_and_the_broker():
    show = (
        "from django.conf import settings; print(settings.AISLE['REDIS_CLUSTER'], settings.CACHES)"
    )
    cluster = "redis://10.0.0.1:7000,redis://10.0.0.2:7000"
    refused = run_manage(["shell", "-c", show], REDIS_CLUSTER="true", REDIS_URL=cluster)
    assert refused.returncode != 0 and "set CACHE_URL" in refused.stderr
    accepted = run_manage(
        ["shell", "-c", show], REDIS_CLUSTER="true", REDIS_URL=cluster,
        CACHE_URL="redis://10.0.0.3:6379/1", CELERY_BROKER_URL="redis://10.0.0.3:6379/0",
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert "True" in accepted.stdout and "'LOCATION': 'redis://10.0.0.3:6379/1'" in accepted.stdout


def test_each_kind_of_work_has_its_own_queue():
    queue_names = {queue.name for queue in celery_app.conf.task_queues}
    assert {"events", "scoring", "training", "default"} <= queue_names


def test_every_task_is_routed_to_its_queue_by_aisles_routes():
    celery_app.loader.import_default_modules()
    expected = {"recs.events": "events", "recs.scoring": "scoring", "recs.training": "training"}
    tasks = {name: task for name, task in celery_app.tasks.items() if name.startswith("recs.")}
    assert len(tasks) >= 13
    for name, task in tasks.items():
        route = celery_app.amqp.router.route(task._get_exec_options(), name, (), {})
        assert route["queue"].name == expected.get(name.rsplit(".", 1)[0], "default"), name


def test_every_beat_entry_names_a_registered_task():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks, entry["task"]


@pytest.mark.django_db
def test_openapi_schema_is_generated(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content
