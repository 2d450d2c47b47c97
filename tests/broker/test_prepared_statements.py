"""The hot path's prepared statements are planned for their own parameters, never from a cached generic plan."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from broker.services.bulk import mark_delivered_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_mark_batch_is_planned_for_its_ids_even_after_the_table_looked_empty():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are Postgres'")
    # given statistics that say the deliveries table is empty (a fresh deployment before autovacuum ran)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE broker_delivery")
    # when the same mark statement runs many times (Postgres' default would switch to a cached generic plan,
    # a seq scan of the table it believes empty, and keep it as the table grows)
    for n in range(12):
        mark_delivered_postgres(by_claim=[], by_ack=[(f"m{n}", "member", ("k1", "k2"))], now=timezone.now())
    # then every execution had a plan of its own
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'UPDATE %%broker_delivery%%'"
        )
        plans = cursor.fetchall()
    # (earlier tests on this connection may have prepared the same UPDATE for another number of session keys)
    assert plans and all(generic == 0 for generic, _ in plans) and max(custom for _, custom in plans) >= 12, plans
