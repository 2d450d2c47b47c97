"""A pipeline's own database thread, holding one connection across batches.

Django's `database_sync_to_async` closes or returns the connection around every call, so with the pool each batch
paid a checkout, a health-check query and a hand-back, and asgiref's context plumbing on top: most of the cost of a
batch of one message. Here the thread keeps its connection; it is checked only when it may have gone bad (after a
failed batch, or after the thread sat idle long enough for Postgres to have restarted meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection, connections

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A connection unused for this long is checked (one `SELECT 1`) before the next batch uses it.
IDLE_CHECK_SECONDS = 1.0


class DbThread:
    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._last_used = 0.0
        self._suspect = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple) -> T:
        self._check_connection()
        try:
            return fn(*args)
        except (OperationalError, InterfaceError):
            if connection.connection is not None and connection.is_usable():
                self._suspect = True
                raise
            # The connection broke under the batch (Postgres restarted since the last check): the transaction
            # rolled back, so the batch runs once more on a new connection instead of failing every caller.
            logger.info("the database connection broke under a batch; retrying it on a new one")
            connection.close()
            return fn(*args)
        except Exception:
            self._suspect = True
            raise
        finally:
            self._last_used = time.monotonic()

    def _check_connection(self) -> None:
        if connection.connection is None:
            return  # the next query connects (a pooled connection is checked by the pool as it is handed out)
        if not (self._suspect or time.monotonic() - self._last_used > IDLE_CHECK_SECONDS):
            return
        self._suspect = False
        if not connection.is_usable():
            logger.info("replacing this pipeline's database connection")
            connection.close()

    async def close(self) -> None:
        """The thread's connection must not outlive the worker."""
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=False)
