"""Overload over HTTP against a real server process on Postgres: a burst of anonymous claims is answered with
200/409/410/429/503, never a 500, whether the per-address limit or a tiny connection pool is what gives."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter

import httpx
import nacl.public
import pytest

from tests.support.oracles import b64url
from tests.support.servers import (
    MINT_INVITE,
    ServerProcess,
    free_port,
    manage,
    migrate,
    server_env,
    throwaway_postgres_database,
)

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATABASE_URL.startswith("postgres"), reason="the connection pool is Postgres's"),
]


@pytest.fixture
def server_on_postgres(tmp_path):
    started: list[ServerProcess] = []

    def start(**settings: str) -> tuple[ServerProcess, dict]:
        port = free_port()
        plain = server_env(tmp_path, port, DATABASE_URL=database)
        migrate(plain)
        minted = json.loads(manage(plain, "shell", "-c", MINT_INVITE).strip().splitlines()[-1])
        env = {**plain, **settings}
        process = ServerProcess(port=port, env=env, log_path=tmp_path / f"server{port}.log").start()
        started.append(process)
        return process, minted

    with throwaway_postgres_database(DATABASE_URL, "claudemesh_overload") as database:
        yield start
        for process in started:
            process.stop()


async def burst(process: ServerProcess, code: str, count: int) -> Counter:
    async with httpx.AsyncClient(base_url=process.http_url, timeout=30) as http:

        async def claim() -> int:
            body = {"recipient_x25519_pubkey": b64url(bytes(nacl.public.PrivateKey.generate().public_key))}
            return (await http.post(f"/invites/{code}/claim", json=body)).status_code

        async def lookup() -> int:
            return (await http.get(f"/api/public/invite-code/{code}")).status_code

        return Counter(await asyncio.gather(*[claim() if n % 2 else lookup() for n in range(count)]))


async def test_a_claim_flood_meets_the_address_limit_not_a_500(server_on_postgres):
    process, minted = server_on_postgres(ANONYMOUS_RATE_LIMIT_PER_MIN="30", DB_POOL_MAX="4")
    statuses = await burst(process, minted["code"], 100)
    assert statuses[500] == 0, statuses
    assert statuses[429] == 40 and set(statuses) <= {200, 409, 410, 429, 503}, statuses  # 30 per route pass
    assert "Traceback" not in process.log_text()


async def test_an_exhausted_pool_answers_503_not_500(server_on_postgres):
    process, minted = server_on_postgres(ANONYMOUS_RATE_LIMIT_PER_MIN="100000", DB_POOL_MAX="1", DB_POOL_TIMEOUT="0.05")
    statuses = await burst(process, minted["code"], 100)
    assert statuses[500] == 0, statuses
    assert set(statuses) <= {200, 409, 410, 503} and statuses[503] > 0, statuses
