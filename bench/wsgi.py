"""The benchmarks' WSGI entry point: the project's application, its time per request in a header."""

import time

from config.wsgi import application as project_application

# Seconds from the server handing the request to Django until Django starts the response: all
# middleware, routing, the view and rendering; not the socket or the queue before the worker.
SERVER_TIME_HEADER = "X-Bench-Server-Time"


def application(environ, start_response):
    started = time.perf_counter()

    def timed_start_response(status, headers, exc_info=None):
        headers.append((SERVER_TIME_HEADER, f"{time.perf_counter() - started:.6f}"))
        return start_response(status, headers, exc_info)

    return project_application(environ, timed_start_response)
