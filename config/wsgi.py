"""WSGI entry point (gunicorn config.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load the URLconf (and with it every view module) now, then move everything allocated so far
# out of the garbage collector's sight: a full collection would otherwise walk the ~170k objects
# of Django, NumPy and SciPy and pause a request for 75-150 ms (measured by bench_serving).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
gc.freeze()
