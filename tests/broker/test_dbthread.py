"""A pipeline's own DB thread keeps its connection across batches and survives that connection breaking."""

from __future__ import annotations

import pytest
from django.db import connection

from broker.dbthread import DbThread
from tests.support.sockets import db

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the pipelines' own threads exist on Postgres only")


async def test_batches_reuse_one_connection_and_a_killed_one_is_replaced_within_the_batch(postgres_only):
    # given a pipeline thread that ran two batches
    thread = DbThread("test-pipeline")
    try:
        first = await thread.run(_backend_pid)
        assert await thread.run(_backend_pid) == first  # no checkout and hand-back between batches
        # when its backend is killed (as by a Postgres restart) and the next batch comes at once
        await db(_terminate)(first)
        # then that batch still runs, on a new connection, instead of failing its callers
        replaced = await thread.run(_backend_pid)
        assert replaced != first
        assert await thread.run(_backend_pid) == replaced
    finally:
        await thread.close()
