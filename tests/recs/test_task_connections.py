"""Celery tasks keep their database connection between tasks and close it the way Django closes
a request's: past CONN_MAX_AGE, or left unusable."""

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from aisle.celery import DB_REUSE_MAX
from config.celery import app


class _Task:
    """What the handler reads of the task that sends the signal."""

    def __init__(self, *, eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=eager)


def _send(signal, task) -> None:
    signal.send(sender=task, task_id="t-1", task=task, args=(), kwargs={})


def test_celery_itself_no_longer_closes_the_connection_after_every_task():
    assert DjangoWorkerFixup(app).db_reuse_max == DB_REUSE_MAX


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signal", [task_prerun, task_postrun])
def test_a_task_keeps_a_fresh_connection_and_closes_an_expired_one(signal):
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() + 60
    _send(signal, _Task(eager=False))
    assert connection.connection is opened
    connection.close_at = time.monotonic() - 1
    _send(signal, _Task(eager=False))
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_a_connection_left_broken_by_an_error_is_closed_at_the_next_task():
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60
    connection.errors_occurred = True
    connection.is_usable = lambda: False  # what a dead server connection answers
    try:
        _send(task_prerun, _Task(eager=False))
    finally:
        del connection.is_usable
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_leaves_the_callers_connection_alone():
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() - 1
    _send(task_postrun, _Task(eager=True))
    assert connection.connection is opened
