"""Aisle as a shop installs it: a wheel built from this repository, installed outside it, added to
a host project that has its own `config` package, its own product model, Django REST framework's
default settings and a local-memory default cache. The project checks, migrates, syncs its 50
products into Aisle's catalog, renders its own product page with the tag, and after one view
event sent to the API the same page is served from the content tier."""

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

HOST_FILES = {
    "config/__init__.py": "from config.celery import app as celery_app\n",
    "config/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        app = Celery("host")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "config/settings.py": """
        import os
        from pathlib import Path

        from aisle import celery as aisle_celery

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "host-project-test-key-" + "k" * 40
        DEBUG = True
        ALLOWED_HOSTS = ["testserver"]
        INSTALLED_APPS = [
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
            "rest_framework", "drf_spectacular", "import_export", "merch", "recs", "shop",
        ]
        MIDDLEWARE = [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "recs.shopper_session.ShopperSessionMiddleware",
        ]
        ROOT_URLCONF = "config.urls"
        TEMPLATES = [{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]},
        }]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        STATIC_URL = "static/"
        USE_TZ = True
        CELERY_TASK_ALWAYS_EAGER = True  # this test runs no worker: tasks run where they are sent
        AISLE = {
            "REDIS_URL": os.environ["HOST_REDIS_URL"],
            "REDIS_KEY_PREFIX": "host-shop:",
            "MODEL_ARTIFACT_DIR": BASE_DIR / "models",
            "CATALOG_SOURCE": {
                "model": "shop.Item",
                "fields": {
                    "sku": "code", "title": "name", "price": "price",
                    "category_path": "section.path", "is_active": "on_sale",
                    "url": "get_absolute_url",
                },
                "stock": "units",
            },
        }
        CELERY_TASK_QUEUES = aisle_celery.task_queues()
        CELERY_TASK_ROUTES = aisle_celery.TASK_ROUTES
        CELERY_BEAT_SCHEDULE = aisle_celery.beat_schedule(AISLE)
    """,
    "config/urls.py": """
        from django.contrib import admin
        from django.urls import include, path

        from shop import views

        urlpatterns = [
            path("", include("recs.urls")),
            path("admin/", admin.site.urls),
            path("items/<slug:section>/<int:pk>/", views.item, name="item"),
        ]
    """,
    "shop/__init__.py": "",
    "shop/apps.py": """
        from django.apps import AppConfig


        class ShopConfig(AppConfig):
            name = "shop"
    """,
    "shop/models.py": """
        from django.db import models
        from django.urls import reverse


        class Section(models.Model):
            path = models.CharField(max_length=200)


        class Item(models.Model):
            code = models.CharField(max_length=40, unique=True)
            name = models.CharField(max_length=200)
            price = models.DecimalField(max_digits=8, decimal_places=2)
            section = models.ForeignKey(Section, on_delete=models.PROTECT)
            on_sale = models.BooleanField(default=True)
            units = models.IntegerField(default=0)

            def get_absolute_url(self):
                return reverse("item", args=[self.section.path.replace("/", "-"), self.pk])
    """,
    "shop/views.py": """
        from django.shortcuts import get_object_or_404, render

        from shop.models import Item


        def item(request, section, pk):
            return render(request, "shop/item.html", {"item": get_object_or_404(Item, pk=pk)})
    """,
    "shop/templates/shop/item.html": """
        {% load recs %}<!doctype html><html><head>{% aisle_head %}</head><body>
        <h1>{{ item.name }}</h1>
        {% recommendations "product_detail" product=item as recs %}
        {% recommendation_carousel recs title="More like this" %}
        </body></html>
    """,
    "steps.py": """
        import json
        import re

        import django

        django.setup()

        from django.core.management import call_command
        from django.http import HttpRequest
        from django.test import Client

        from merch.models import Product
        from recs.api_keys import create_api_key
        from recs.shopper_session import session_id_from_cookie
        from shop.models import Item, Section

        call_command("check", fail_level="WARNING")
        call_command("makemigrations", "shop", verbosity=0)
        call_command("migrate", verbosity=0)
        call_command("makemigrations", "merch", "recs", check=True, dry_run=True, verbosity=0)

        lamps, mugs = Section.objects.create(path="home/lamps"), Section.objects.create(path="kitchen/mugs")
        for n in range(50):
            Item.objects.create(code=f"IT{n:03}", name=f"Item {n}", price="9.50",
                                section=lamps if n % 2 else mugs, units=5)
        call_command("sync_catalog")
        print("synced", Product.objects.count(), Product.objects.filter(stock__on_hand=5).count())

        shopper = Client()
        first = shopper.get(Item.objects.get(code="IT001").get_absolute_url()).content.decode()
        print("first", re.search(r'data-aisle-tier="(\\w+)"', first).group(1))
        print("links", "/items/home-lamps/" in first)

        request = HttpRequest()
        request.COOKIES = {k: v.value for k, v in shopper.cookies.items()}
        session_id = session_id_from_cookie(request)
        _, secret = create_api_key("host backend", "secret", ["write"])
        sent = Client().post(
            "/api/v1/events",
            json.dumps([{"event_id": "host-view-1", "type": "view", "session_id": session_id,
                         "product_id": "IT003"}]),
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        print("event", sent.status_code, sent.json().get("accepted"))

        again = shopper.get(Item.objects.get(code="IT001").get_absolute_url()).content.decode()
        print("again", re.search(r'data-aisle-tier="(\\w+)"', again).group(1))
        print("schema", Client().get("/api/v1/schema/").status_code)
    """,
}


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel built from this checkout, and a fresh virtualenv it is installed into with pip.
    The venv takes the third-party dependencies from this test environment (a .pth file naming
    its site-packages: no download); `pip check` then proves the wheel declares them rightly."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(BASE_DIR), "--no-deps",
         "--no-build-isolation", "-w", str(work / "dist")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (work / "dist").glob("aisle-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    (venv_site,) = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for args in (["install", "--no-deps", str(wheel)], ["check"]):
        result = subprocess.run(
            [str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return wheel, python


def test_the_wheel_holds_the_apps_with_their_templates_and_not_the_demo(installed_wheel):
    names = zipfile.ZipFile(installed_wheel[0]).namelist()
    assert {name.split("/")[0] for name in names} - {"aisle-0.1.0.dist-info"} == {
        "aisle", "merch", "recs",
    }  # fmt: skip
    for packaged in (
        "recs/templates/recs/carousel.html",
        "recs/templates/admin/recs/health.html",
        "merch/templates/admin/merch/experiment/change_form.html",
        "recs/static/recs/aisle.js",
        "merch/migrations/0001_initial.py",
        "recs/migrations/0001_initial.py",
    ):
        assert packaged in names, packaged


@pytest.mark.worker
def test_a_host_project_installs_syncs_renders_and_personalises(installed_wheel, tmp_path):
    host = tmp_path / "host"
    for relative, text in HOST_FILES.items():
        path = host / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    _, python = installed_wheel
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AISLE_", "REDIS_", "CACHE_", "CELERY_", "DATABASE_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(host),
        "HOST_REDIS_URL": os.environ["AISLE_TEST_REDIS_URL"],
    }
    where = subprocess.run(
        [str(python), "-c", "import recs, merch, aisle; print(recs.__file__)"],
        cwd=host, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(python.parent.parent)), "the apps come from the wheel"
    result = subprocess.run(
        [str(python), "steps.py"], cwd=host, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["synced"] == "50 50", "every host product, with its stock"
    assert lines["first"] == "anonymous", "a first visit, from the newest products in stock"
    assert lines["links"] == "True", "cards link to the host's own product URLs"
    assert lines["event"] == "202 1"
    assert lines["again"] == "content", "one view later, the content tier"
    assert lines["schema"] == "200", "the schema works with DRF's default schema class"
