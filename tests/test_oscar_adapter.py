"""The django-oscar example adapter (examples/oscar/aisle_oscar.py), tested for real: Aisle's wheel
and django-oscar 4.2.1 with its dependencies installed into a fresh virtualenv (Oscar's packages
with pip from the configured index, the rest borrowed from this test environment), a minimal Oscar
project with Oscar's documented settings and Aisle's block using the adapter. The project checks,
migrates, creates products with stock records through Oscar's models, syncs them, renders Oscar's
own product page with the carousel (links are Oscar's slug+id URLs), and after one view event sent
to the API the page is served from the content tier. About 30 s: building the wheel, installing
Oscar from pip's configured index, migrating Oscar's apps."""

import subprocess
from pathlib import Path

from tests.host_project import run_steps, write_host

BASE_DIR = Path(__file__).resolve().parent.parent
OSCAR = "django-oscar[sorl-thumbnail]==4.2.1"  # Oscar's documented install (its thumbnailer)

HOST_FILES = {
    "config/settings.py": """
        import os
        from pathlib import Path

        from aisle import celery as aisle_celery
        from oscar.defaults import *  # noqa: F403 (Oscar's documented settings start)

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "oscar-host-test-key-" + "k" * 40
        DEBUG = True
        ALLOWED_HOSTS = ["testserver"]
        SITE_ID = 1
        INSTALLED_APPS = [
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
            "django.contrib.sites", "django.contrib.flatpages",
            "oscar.config.Shop",
            "oscar.apps.analytics.apps.AnalyticsConfig",
            "oscar.apps.checkout.apps.CheckoutConfig",
            "oscar.apps.address.apps.AddressConfig",
            "oscar.apps.shipping.apps.ShippingConfig",
            "oscar.apps.catalogue.apps.CatalogueConfig",
            "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
            "oscar.apps.communication.apps.CommunicationConfig",
            "oscar.apps.partner.apps.PartnerConfig",
            "oscar.apps.basket.apps.BasketConfig",
            "oscar.apps.payment.apps.PaymentConfig",
            "oscar.apps.offer.apps.OfferConfig",
            "oscar.apps.order.apps.OrderConfig",
            "oscar.apps.customer.apps.CustomerConfig",
            "oscar.apps.search.apps.SearchConfig",
            "oscar.apps.voucher.apps.VoucherConfig",
            "oscar.apps.wishlists.apps.WishlistsConfig",
            "oscar.apps.dashboard.apps.DashboardConfig",
            "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
            "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
            "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
            "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
            "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
            "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
            "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
            "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
            "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
            "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
            "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
            "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
            "widget_tweaks", "haystack", "treebeard", "sorl.thumbnail", "django_tables2",
            "rest_framework", "drf_spectacular", "import_export", "merch", "recs",
        ]
        MIDDLEWARE = [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "oscar.apps.basket.middleware.BasketMiddleware",
            "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
            "recs.shopper_session.ShopperSessionMiddleware",
        ]
        AUTHENTICATION_BACKENDS = [
            "oscar.apps.customer.auth_backends.EmailBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
        ROOT_URLCONF = "config.urls"
        TEMPLATES = [{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [BASE_DIR / "templates"],
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ]},
        }]
        HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        STATIC_URL = "static/"
        MEDIA_ROOT = BASE_DIR / "media"
        MEDIA_URL = "media/"
        USE_TZ = True
        CELERY_TASK_ALWAYS_EAGER = True  # no worker here: tasks run where they are sent
        AISLE = {
            "REDIS_URL": os.environ["HOST_REDIS_URL"],
            "REDIS_KEY_PREFIX": "oscar-shop:",
            "MODEL_ARTIFACT_DIR": BASE_DIR / "models",
            "CATALOG_SOURCE": {
                "model": "catalogue.Product",
                "fields": {
                    "sku": "aisle_oscar.sku", "title": "aisle_oscar.title",
                    "price": "aisle_oscar.price", "currency": "aisle_oscar.currency",
                    "category_path": "aisle_oscar.category_path",
                    "is_active": "aisle_oscar.is_active", "url": "get_absolute_url",
                },
                "stock": "aisle_oscar.stock",
                "queryset": "aisle_oscar.queryset",
            },
        }
        CELERY_TASK_QUEUES = aisle_celery.task_queues()
        CELERY_TASK_ROUTES = aisle_celery.TASK_ROUTES
    """,
    "config/urls.py": """
        from django.apps import apps
        from django.contrib import admin
        from django.urls import include, path

        urlpatterns = [
            path("", include("recs.urls")),
            path("admin/", admin.site.urls),
            path("", include(apps.get_app_config("oscar").urls[0])),
        ]
    """,
    # Oscar's own product page, extended (a template that extends its namesake) with the carousel.
    "templates/oscar/catalogue/detail.html": """
        {% extends "oscar/catalogue/detail.html" %}{% load recs %}
        {% block extrahead %}{{ block.super }}{% aisle_head %}{% endblock %}
        {% block content %}{{ block.super }}
        {% recommendations "product_detail" product=product as recs %}
        {% recommendation_carousel recs title="More like this" %}
        {% endblock %}
    """,
    "steps.py": """
        import re

        import django

        django.setup()

        from django.core.management import call_command
        from django.db import transaction
        from django.test import Client

        import aisle_oscar
        from merch.catalog_source import connect_receivers, disconnect_receivers, sync_catalog
        from merch.models import Product as AisleProduct
        from oscar.apps.catalogue.categories import create_from_breadcrumbs
        from oscar.core.loading import get_model
        from shopper_steps import send_view, tier

        Product = get_model("catalogue", "Product")
        ProductClass = get_model("catalogue", "ProductClass")
        Partner = get_model("partner", "Partner")
        StockRecord = get_model("partner", "StockRecord")

        call_command("check")
        call_command("migrate", verbosity=0)
        call_command("makemigrations", "merch", "recs", check=True, dry_run=True, verbosity=0)
        disconnect_receivers()  # the products below come from the sync, not from their saves

        books = ProductClass.objects.create(name="Book", track_stock=True)
        partner = Partner.objects.create(name="Warehouse")
        fiction = create_from_breadcrumbs("Books > Fiction")
        history = create_from_breadcrumbs("Books > History")

        def sold(product, n):
            StockRecord.objects.create(product=product, partner=partner, partner_sku=f"P{n}",
                                       price=f"{10 + n}.00", price_currency="EUR",
                                       num_in_stock=10, num_allocated=3)

        with transaction.atomic():
            for n in range(8):
                book = Product.objects.create(product_class=books, title=f"Book {n}",
                                              upc=f"978000{n}" if n % 2 else None)
                book.categories.add(fiction if n < 5 else history)
                sold(book, n)
            boxed = Product.objects.create(product_class=books, title="Boxed set",
                                           structure=Product.PARENT)
            boxed.categories.add(fiction)
            for n in (8, 9):
                sold(Product.objects.create(parent=boxed, structure=Product.CHILD,
                                            upc=f"BOX-{n}"), n)
            hidden = Product.objects.create(product_class=books, title="Hidden", is_public=False)
            sold(hidden, 10)
            Product.objects.create(product_class=books, title="No stock record")

        connect_receivers()
        aisle_oscar.follow_stock_records()
        result = sync_catalog()
        print("sync", result.created, result.updated, len(result.rejected))
        synced = AisleProduct.objects.filter(is_active=True)
        print("synced", synced.count(), synced.filter(stock__on_hand=7).count())
        odd = AisleProduct.objects.get(sku="9780001")
        print("upc", odd.title, odd.price, odd.currency, odd.category.path)
        even = Product.objects.get(title="Book 0")
        print("no-upc", AisleProduct.objects.get(sku=f"oscar-{even.pk}").url == even.get_absolute_url())
        child = AisleProduct.objects.get(sku="BOX-8")
        print("child", child.title, child.category.path)
        print("skus", " ".join(sorted(AisleProduct.objects.values_list("sku", flat=True))))

        record = StockRecord.objects.get(product__upc="9780003")
        record.num_allocated = 10
        record.save()
        print("stock", AisleProduct.objects.get(sku="9780003").stock.on_hand)

        shopper = Client()
        page = shopper.get(even.get_absolute_url())
        first = page.content.decode()
        print("page", page.status_code, "Book 0" in first)
        print("first", tier(first))
        links = re.findall(r'class="aisle-card__link" href="([^"]+)"', first)
        oscar_urls = {p.get_absolute_url() for p in Product.objects.all()}
        slug_id = [re.fullmatch(r"/catalogue/[-\\w]+_\\d+/", link) for link in links]
        print("links", len(links), set(links) <= oscar_urls and all(slug_id))

        print("event", *send_view(shopper, "9780005", "oscar-view-1"))
        again = shopper.get(even.get_absolute_url()).content.decode()
        print("again", tier(again))
        print("resync", sync_catalog().unchanged)
    """,
}


def test_an_oscar_shop_syncs_renders_and_personalises(installed_wheel, tmp_path):
    _, python = installed_wheel
    install = subprocess.run(
        [str(python), "-m", "pip", "install", OSCAR], capture_output=True, text=True, timeout=600
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    # the adapter as shipped, importable as a shop would have copied it into its project
    lines = run_steps(
        python, write_host(tmp_path / "oscar_host", HOST_FILES), BASE_DIR / "examples" / "oscar"
    )
    assert lines["sync"] == "10 0 0", "8 standalone products and 2 children; no parent"
    assert lines["synced"] == "10 10", "all active, each with 10 in stock less 3 allocated"
    assert lines["skus"] == (
        "9780001 9780003 9780005 9780007 BOX-8 BOX-9 oscar-1 oscar-3 oscar-5 oscar-7"
    ), "UPC, else oscar-<pk>; not the hidden product nor the one without a stock record"
    assert lines["upc"] == "Book 1 11.00 EUR books/fiction", "from the stock record, category path"
    assert lines["no-upc"] == "True", "the page URL is Oscar's"
    assert lines["child"] == "Boxed set books/fiction", "a child takes its parent's title, category"
    assert lines["stock"] == "0", "a stock record's save reaches Aisle (follow_stock_records)"
    assert lines["page"] == "200 True", "Oscar's own product page renders with the carousel"
    assert lines["first"] == "anonymous"
    assert lines["links"] == "8 True", "cards link to Oscar's /catalogue/<slug>_<id>/ URLs"
    assert lines["event"] == "202 1"
    assert lines["again"] == "content", "one view later, the content tier"
    assert lines["resync"] == "10", "syncing again changes nothing"
