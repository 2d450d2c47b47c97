"""Coordination where concurrency is real: task claims raced by threads and by agents on two server processes, one
firing per due time with two workers polling the same schedule, and a cron that fires again after a restart
(Postgres + Redis, real processes)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from meshes.models import Task
from meshes.selectors import actor_for_member
from meshes.services.tasks import task_claim, task_create
from tests.broker.test_multiworker import (  # noqa: F401  (fixtures)
    DATABASE_URL,
    REDIS_URL,
    channel_layer_urls,
    cluster,
    e2e_database,
    wait_until,
)
from tests.support.e2e import E2EPeer
from tests.support.servers import manage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATABASE_URL.startswith("postgres") and REDIS_URL),
                       reason="needs DATABASE_URL (Postgres) and REDIS_URL: workers share both"),
]


async def answer(peer: E2EPeer, frame: dict) -> dict:
    req_id = uuid.uuid4().hex[:12]
    await peer.send({**frame, "_reqId": req_id})
    return await peer.expect(lambda f: f.get("_reqId") == req_id, timeout=15)


@pytest.mark.django_db(transaction=True)
def test_threads_racing_for_one_task_leave_exactly_one_claimer(mesh):
    from tests.support.identities import new_identity

    agents = [new_identity(mesh, f"agent{n}") for n in range(12)]
    task = task_create(actor=actor_for_member(member_id=agents[0].member.id), title="one job")
    barrier = threading.Barrier(len(agents))
    outcomes: list[str] = []

    def claim(agent) -> None:
        actor = actor_for_member(member_id=agent.member.id)
        barrier.wait()
        try:
            task_claim(actor=actor, task_id=task.id)
            outcomes.append(agent.member.display_name)
        except Exception as exc:  # the losers' refusal
            outcomes.append(getattr(exc, "code", repr(exc)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("agent")]
    assert len(winners) == 1 and outcomes.count("task_not_claimable") == len(agents) - 1
    assert Task.objects.get(id=task.id).claimed_by_name == winners[0]


async def test_agents_on_two_workers_claim_each_task_exactly_once(cluster):  # noqa: F811
    start, roster = cluster
    w1, w2 = start()
    members = roster(6)
    peers = [E2EPeer(m, (w1 if n % 2 else w2).ws_url) for n, m in enumerate(members)]
    for peer in peers:
        await peer.connect()
    created = [await answer(peers[0], {"type": "create_task", "title": f"job {n}"}) for n in range(15)]
    ids = [c["id"] for c in created]

    async def claim_all(peer: E2EPeer) -> list[str]:
        won = []
        for task_id in ids:
            reply = await answer(peer, {"type": "claim_task", "taskId": task_id})
            if reply["type"] == "task_list":
                won.append(task_id)
            else:
                assert reply["code"] == "task_not_claimable", reply
        return won

    results = await asyncio.gather(*(claim_all(peer) for peer in peers))
    claimed = [task_id for won in results for task_id in won]
    assert sorted(claimed) == sorted(ids)  # every task once, never twice
    assert len({task_id for won in results[1::2] for task_id in won}) > 0  # worker 1's agents won some
    assert len({task_id for won in results[0::2] for task_id in won}) > 0  # and worker 2's
    for peer in peers:
        await peer.close()


def _schedule_rows(env: dict, mesh_id: str, member_id: str, count: int, seconds: float) -> None:
    due = (timezone.now() + timedelta(seconds=seconds)).isoformat()
    manage(env, "shell", "-c", (
        "from datetime import datetime; from meshes.models import ScheduledMessage; "
        f"[ScheduledMessage.objects.create(mesh_id={mesh_id!r}, member_id={member_id!r}, to='*', message=f'tick {{n}}', "
        f"deliver_at=datetime.fromisoformat({due!r})) for n in range({count})]"
    ))


def _fired(env: dict) -> dict:
    out = manage(env, "shell", "-c", (
        "import json; from broker.models import Message; from meshes.models import ScheduledMessage; "
        "print(json.dumps({'messages': Message.objects.filter(subtype='reminder').count(), "
        "'counts': sorted(ScheduledMessage.objects.values_list('fired_count', flat=True)), "
        "'next': [str(d) for d in ScheduledMessage.objects.filter(cron__isnull=False).values_list('deliver_at', flat=True)]}))"
    ))
    return json.loads(out.strip().splitlines()[-1])


async def test_two_workers_polling_one_schedule_fire_each_due_time_once(cluster):  # noqa: F811
    start, roster = cluster
    w1, w2 = start({"BROKER_SCHEDULER_POLL_SECONDS": "0.05"})
    [alice] = roster(1)
    _schedule_rows(w1.env, alice.mesh_id, alice.member_id, 60, seconds=1.5)

    async def all_fired():
        state = _fired(w1.env)
        return state if state["counts"] == [1] * 60 else None

    state = await wait_until(all_fired, timeout=30)
    await asyncio.sleep(1.0)  # a second firing would show up by now
    assert _fired(w1.env)["messages"] == 60 == state["messages"]


async def fired_counts(env: dict, counts: list[int]):
    async def check():
        state = _fired(env)
        return state if state["counts"] == counts else None

    return await wait_until(check, timeout=30)


async def test_a_cron_fires_without_any_connection_and_again_after_a_restart(cluster):  # noqa: F811
    start, roster = cluster
    w1, _ = start({"BROKER_SCHEDULER_POLL_SECONDS": "0.2"})
    [alice] = roster(1)
    manage(w1.env, "shell", "-c", (
        "from datetime import timedelta; from django.utils import timezone; from meshes.models import ScheduledMessage; "
        f"ScheduledMessage.objects.create(mesh_id={alice.mesh_id!r}, member_id={alice.member_id!r}, to={alice.pubkey!r}, "
        "message='every minute', cron='* * * * *', deliver_at=timezone.now() - timedelta(seconds=1))"
    ))
    assert (await fired_counts(w1.env, [1]))["messages"] == 1
    for worker in start.workers:
        worker.stop()
    manage(w1.env, "shell", "-c", (  # the next minute has come while the broker was down
        "from datetime import timedelta; from django.utils import timezone; from meshes.models import ScheduledMessage; "
        "ScheduledMessage.objects.update(deliver_at=timezone.now() - timedelta(seconds=1))"
    ))
    for worker in start.workers:
        worker.start()
    after_restart = await fired_counts(w1.env, [2])
    assert after_restart["messages"] == 2 and after_restart["next"][0] > str(timezone.now())[:16]
    peer = E2EPeer(alice, w1.ws_url)  # nobody was connected: both firings waited in alice's queue
    await peer.connect()
    await peer.expect(lambda f: f.get("subtype") == "reminder")
    await peer.expect(lambda f: f.get("subtype") == "reminder")
    await peer.close()
