"""What durability costs in Postgres: the rows and bytes each stored message takes, and the retention sweep at scale.

    python -m bench.durability size      --database-url D
    python -m bench.durability retention --database-url D [--rows 10000000] [--days 8] [--batch 5000]

size: after a benchmark run against the database of `--database-url`, the rows, table and index bytes of the
message path (messages, deliveries, topic history) and what one message costs of each.
retention: fills `--rows` messages (one delivered row each, stand-in envelopes of a short DM) spread evenly over
the last `--days` days straight into the database, then runs the broker's own retention sweep
(`messages_expire`, 7 days) and reports how long it took and its longest batch: the longest a lock is held.
The database must be migrated (e.g. one made by `bench.run_server`) and should be a throwaway one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TABLES = ("broker_message", "broker_delivery", "meshes_topicmessage")


def _django(database_url: str):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudemesh.settings")
    import django

    django.setup()
    from django.db import connection

    return connection


def size(database_url: str) -> dict:
    connection = _django(database_url)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        figures = {}
        for table in TABLES:
            cursor.execute(
                "SELECT count(*), pg_relation_size(%s::regclass), pg_indexes_size(%s::regclass),"
                " pg_total_relation_size(%s::regclass) FROM " + table, [table, table, table])
            rows, heap, indexes, total = cursor.fetchone()
            figures[table] = {"rows": rows, "table_bytes": heap, "index_bytes": indexes, "total_bytes": total}
    messages = figures["broker_message"]["rows"] or 1
    per_message = {table: {"rows": round(f["rows"] / messages, 2), "bytes": round(f["total_bytes"] / messages)}
                   for table, f in figures.items()}
    return {"tables": figures, "per_message": per_message,
            "bytes_per_message": sum(p["bytes"] for p in per_message.values())}


FILL_SQL = """
WITH m AS (
  INSERT INTO broker_message (id, mesh_id, sender_member_id, sender_session_pubkey, sender_pubkey, target_spec,
                              priority, nonce, ciphertext, client_message_id, created_at, subtype)
  SELECT 'ret' || lpad(g::text, 12, '0') || %(tag)s, %(mesh)s, %(member)s, NULL, %(pubkey)s, %(pubkey)s, 'now',
         repeat('n', 32), repeat('c', 200), 'ret.' || %(tag)s || '.' || g, now() - %(span)s::interval * (g::float / %(n)s), NULL
  FROM generate_series(%(lo)s, %(hi)s) AS g
  RETURNING id, created_at
)
INSERT INTO broker_delivery (message_id, recipient_member_id, recipient_session, gated, priority, state, claimed_by,
                             claimed_at, delivered_at)
SELECT id, %(member)s, NULL, true, 'now', 2, NULL, NULL, created_at FROM m
"""


def retention(database_url: str, rows: int, days: float, batch: int) -> dict:
    connection = _django(database_url)
    from django.db import transaction

    from broker.models import Message
    from broker.services import deliveries
    from meshes.models import Member

    member = Member.objects.exclude(pubkey=None).first()
    tag = f"{int(time.time())}"
    started = time.monotonic()
    for lo in range(1, rows + 1, 200_000):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(FILL_SQL, {"tag": tag, "mesh": member.mesh_id, "member": member.id, "pubkey": member.pubkey,
                                      "span": f"{days} days", "n": rows, "lo": lo, "hi": min(rows, lo + 199_999)})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE broker_message")
        cursor.execute("VACUUM ANALYZE broker_delivery")
    filled = time.monotonic() - started
    total = Message.objects.count()
    timings: list[float] = []
    deleted = 0
    swept_started = time.monotonic()
    while True:  # as the sweeper runs it: one batch per call, each its own transaction
        began = time.monotonic()
        went = deliveries.messages_expire(batch_size=batch, max_batches=1)
        if not went:
            break
        timings.append(time.monotonic() - began)
        deleted += went
    swept = time.monotonic() - swept_started
    ordered = sorted(timings)
    return {"rows_filled": rows, "messages_in_table": total, "fill_s": round(filled, 1), "deleted": deleted,
            "batches": len(timings), "sweep_s": round(swept, 1),
            "deleted_per_s": round(deleted / swept) if swept else None,
            "batch_ms": {"p50": round(ordered[len(ordered) // 2] * 1000, 1) if ordered else None,
                         "max": round(ordered[-1] * 1000, 1) if ordered else None},
            "left": Message.objects.count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("size", "retention"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = size(args.database_url) if args.what == "size" else retention(args.database_url, args.rows, args.days,
                                                                         args.batch)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
