"""Aisle as a shop installs it: a wheel built from this repository, installed outside it, added to
a host project that has its own `config` package, its own product model, Django REST framework's
default settings and a local-memory default cache. The project checks, migrates, syncs its 50
products into Aisle's catalog, renders its own product page with the tag, and after one view
event sent to the API the same page is served from the content tier."""

import zipfile
from pathlib import Path

import pytest

from tests.host_project import run_steps, write_host

BASE_DIR = Path(__file__).resolve().parent.parent

HOST_FILES = {
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
        import sys

        import django

        django.setup()

        import recs
        from django.core.management import call_command
        from django.test import Client

        from merch.models import Product
        from shop.models import Item, Section
        from shopper_steps import send_view, tier

        print("installed", recs.__file__.startswith(sys.prefix))

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
        print("first", tier(first))
        print("links", "/items/home-lamps/" in first)

        print("event", *send_view(shopper, "IT003", "host-view-1"))

        again = shopper.get(Item.objects.get(code="IT001").get_absolute_url()).content.decode()
        print("again", tier(again))
        print("schema", Client().get("/api/v1/schema/").status_code)
    """,
}


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
    _, python = installed_wheel
    lines = run_steps(python, write_host(tmp_path / "host", HOST_FILES))
    assert lines["installed"] == "True", "the apps come from the wheel, not the checkout"
    assert lines["synced"] == "50 50", "every host product, with its stock"
    assert lines["first"] == "anonymous", "a first visit, from the newest products in stock"
    assert lines["links"] == "True", "cards link to the host's own product URLs"
    assert lines["event"] == "202 1"
    assert lines["again"] == "content", "one view later, the content tier"
    assert lines["schema"] == "200", "the schema works with DRF's default schema class"
