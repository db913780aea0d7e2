"""A Django project of a shop's own, written to a directory and run with the Aisle wheel installed
in a fresh virtualenv (tests/test_packaging.py, tests/test_oscar_adapter.py): the parts every
such host needs, and the running of its steps script."""

import os
import subprocess
import textwrap
from pathlib import Path

# Every host defines its Celery app the documented way: Aisle's tasks run under it.
CELERY_FILES = {
    "config/__init__.py": "from config.celery import app as celery_app\n",
    "config/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        app = Celery("host")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
}

# Imported by a host's steps.py: how a shopper's page and one view event are driven.
SHOPPER_STEPS = {
    "shopper_steps.py": """
        import json
        import re

        from django.http import HttpRequest
        from django.test import Client

        from recs.api_keys import create_api_key
        from recs.shopper_session import session_id_from_cookie


        def tier(html):
            return re.search(r'data-aisle-tier="(\\w+)"', html).group(1)


        def send_view(shopper, sku, event_id):
            \"\"\"A view by this browser's shopper, sent by the shop's backend with a secret key.\"\"\"
            request = HttpRequest()
            request.COOKIES = {k: v.value for k, v in shopper.cookies.items()}
            _, secret = create_api_key(f"backend {event_id}", "secret", ["write"])
            sent = Client().post(
                "/api/v1/events",
                json.dumps([{"event_id": event_id, "type": "view", "product_id": sku,
                             "session_id": session_id_from_cookie(request)}]),
                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}",
            )
            return sent.status_code, sent.json().get("accepted")
    """,
}


def write_host(root: Path, files: dict[str, str]) -> Path:
    for relative, text in {**CELERY_FILES, **SHOPPER_STEPS, **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def run_steps(python: Path, host: Path, *extra_path: Path) -> dict[str, str]:
    """Run the host's steps.py with none of this project's settings in the environment; returns
    its output lines as {first word: the rest}."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AISLE_", "REDIS_", "CACHE_", "CELERY_", "DATABASE_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": os.pathsep.join(str(path) for path in (host, *extra_path)),
        "HOST_REDIS_URL": os.environ["AISLE_TEST_REDIS_URL"],
    }
    result = subprocess.run(
        [str(python), "steps.py"], cwd=host, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
