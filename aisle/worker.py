"""The Celery worker's consumer, made to ride out a broker restart.

    CELERY_WORKER_CONSUMER = "aisle.worker:Consumer"

With a Redis broker, Celery 5.7 and kombu 5.7 end the worker ("Unrecoverable error:
AttributeError: 'NoneType' object has no attribute 'hostname'") when the connection drops while
the worker holds unacknowledged messages (prefetched batches, re-scores waiting for their
countdown): after the lost connection is collected, closing it again tries to give those messages
back through a transport that is already detached. Nothing is lost by skipping that second close:
the messages are still in the broker's unacked set (redelivered after the visibility timeout), or
gone with a Redis that restarted empty, and the worker goes on to reconnect.
"""

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc):
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            logger.warning(
                "The lost broker connection could not be closed cleanly (%r, a known Celery/kombu "
                "5.7 fault); reconnecting anyway. Its unacknowledged messages are redelivered "
                "after the visibility timeout.",
                error,
            )
