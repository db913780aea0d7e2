"""The Celery app: configured from Django settings (CELERY_*), tasks discovered from the apps."""

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The demo runs its worker as root: scripts/demo.sh is run as root on a fresh machine, often from
# a clone under /root, which no unprivileged user may enter, with the SQLite file and var/ owned
# by root. Celery's check of a root worker guards against pickle (code from the broker run as
# root); this project accepts JSON only (CELERY_ACCEPT_CONTENT), so the check would only print
# its warning into every worker log. Celery's documented C_FORCE_ROOT does not silence it (it
# only lets a root worker accept pickle, which nothing here needs), so the demo's supervisor
# config says so explicitly and that one warning is dropped. A production worker runs as its
# own user (deploy/systemd/) and keeps the check.
if os.environ.get("AISLE_ROOT_WORKER_ACCEPTED") == "true":
    warnings.filterwarnings(
        "ignore", message="You're running the worker with superuser privileges",
        category=SecurityWarning,
    )  # fmt: skip

app = Celery("aisle")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
