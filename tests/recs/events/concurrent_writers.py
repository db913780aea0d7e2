"""The two writers of test_concurrent_writers, each run as its own process against one database.

`python -m tests.recs.events.concurrent_writers prepare|worker|admin ...` with DATABASE_URL,
REDIS_URL and AISLE_VAR_DIR naming the test's world; each prints one JSON object of counts.
"""

import argparse
import json
import os
import random
import sys
import time
import traceback
import uuid
from pathlib import Path
from urllib.parse import urlencode

import django

ADMIN_USERNAME = "merchandiser"
STOCK_ROWS_EDITED = 10  # the saves go round the first few stock rows of the catalog


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def prepare(products: int) -> dict:
    """Migrate the fresh database, then seed a catalog with stock and a staff user who may edit
    it in the admin (one process: each start of Django costs seconds)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from bench.events import seed_catalog

    call_command("migrate", interactive=False, verbosity=0)
    skus = seed_catalog(products)
    get_user_model().objects.create_superuser(ADMIN_USERNAME, "merch@example.com", "unused-pw-1")
    return {"products": len(skus)}


def _batch(rng: random.Random, run: str, number: int, size: int, skus: list[str]) -> list:
    """One batch of random events, as the events queue hands them to a worker."""
    from bench.events import random_event, record_from_event

    return [
        record_from_event(random_event(rng, f"cw-{run}-{number}-{n}", skus, users=500))
        for n in range(size)
    ]


def work(batch_size: int, ready_file: Path, stop_file: Path, max_seconds: float) -> dict:
    """Apply event batches back to back until `stop_file` appears; every exception counts.
    `ready_file` appears after the first batch, so the other writer starts against a busy
    database; the finish time of each batch shows how far the two overlapped."""
    from merch.models import Product
    from recs.events.services import apply_event_batch

    skus = list(Product.objects.values_list("sku", flat=True))
    rng = random.Random(7)
    run = uuid.uuid4().hex[:8]
    finished_at: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_seconds
    number = 0
    while not stop_file.exists() and time.monotonic() < deadline:
        records = _batch(rng, run, number, batch_size, skus)
        try:
            apply_event_batch(f"cw-{run}-{number}", records)
            finished_at.append(time.time())
        except Exception as error:
            errors.append(_error_text(error))
        number += 1
        if number == 1:
            ready_file.touch()
    return {
        "batches": len(finished_at),
        "events": len(finished_at) * batch_size,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "batch_finished_at": finished_at,
    }


def edit_stock(saves: int, start_file: Path, max_wait_s: float) -> dict:
    """Once `start_file` appears, save stock through the admin's change form as a merchandiser
    does: open the form, post a new on-hand quantity, follow the redirect; any other answer,
    exception or a value that did not stick counts as an error."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from merch.models import Stock

    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN_USERNAME))
    stock_rows = list(
        Stock.objects.order_by("pk").values_list("pk", "product__sku")[:STOCK_ROWS_EDITED]
    )
    deadline = time.monotonic() + max_wait_s
    while not start_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{start_file} did not appear within {max_wait_s} s")
        time.sleep(0.02)
    persisted = 0
    errors: list[str] = []
    started_at = time.time()
    for number in range(saves):
        stock_id, sku = stock_rows[number % len(stock_rows)]
        # Opened from the list searched for the SKU, as a merchandiser does: the admin keeps the
        # search, so the redirect after the save lands on that one row (not 100 editable rows).
        search = urlencode({"_changelist_filters": urlencode({"q": sku})})
        url = f"{reverse('admin:merch_stock_change', args=[stock_id])}?{search}"
        on_hand = 1000 + number
        try:
            form = client.get(url)
            if form.status_code != 200:
                errors.append(f"GET change form: {form.status_code}")
                continue
            saved = client.post(url, {"on_hand": on_hand, "reserved": 0, "_save": "Save"})
            if saved.status_code != 302:
                errors.append(f"POST change form: {saved.status_code}")
                continue
            listing = client.get(saved["Location"])
            if listing.status_code != 200:
                errors.append(f"GET {saved['Location']}: {listing.status_code}")
                continue
            if Stock.objects.get(pk=stock_id).on_hand == on_hand:
                persisted += 1
            else:
                errors.append("saved value not persisted")
        except Exception as error:
            errors.append(_error_text(error))
    return {
        "saves": saves,
        "persisted": persisted,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "started_at": started_at,
        "finished_at": time.time(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare")
    prepare_parser.add_argument("--products", type=int, default=100)
    worker_parser = commands.add_parser("worker")
    worker_parser.add_argument("--batch-size", type=int, default=300)
    worker_parser.add_argument("--ready-file", type=Path, required=True)
    worker_parser.add_argument("--stop-file", type=Path, required=True)
    worker_parser.add_argument("--max-seconds", type=float, default=120)
    admin_parser = commands.add_parser("admin")
    admin_parser.add_argument("--saves", type=int, default=100)
    admin_parser.add_argument("--start-file", type=Path, required=True)
    admin_parser.add_argument("--max-wait-seconds", type=float, default=60)
    args = parser.parse_args(argv)
    _setup_django()
    try:
        if args.command == "prepare":
            report = prepare(args.products)
        elif args.command == "worker":
            report = work(args.batch_size, args.ready_file, args.stop_file, args.max_seconds)
        else:
            report = edit_stock(args.saves, args.start_file, args.max_wait_seconds)
    except Exception:
        traceback.print_exc()
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
