"""Shared fixtures. Tests run against whatever DATABASE_URL / REDIS_URL say (Postgres and Redis in CI)."""

from __future__ import annotations

import copy
import uuid

import pytest

from meshes import selectors, services


@pytest.fixture(autouse=True)
def fresh_cache_namespace(settings):
    """Cached state (allauth's sign-up rate limits among it) never leaks between tests or runs: Redis outlives both."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


@pytest.fixture
def make_user(django_user_model):
    counter = {"n": 0}

    def make(email: str | None = None, password: str = "correct horse battery staple"):
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.test"
        return django_user_model.objects.create_user(username=email, email=email, password=password)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.test")


@pytest.fixture
def mesh(owner):
    return services.mesh_create(owner=owner, name="Test Mesh")


@pytest.fixture
def owner_actor(mesh, owner):
    return selectors.actor_for_user(mesh_id=mesh.id, user=owner)


def pytest_runtest_makereport(item, call):
    """In CI (CLAUDEMESH_REQUIRE_SERVICES=1) a skipped test is a failure: nothing may be skipped there."""
    import os

    if os.environ.get("CLAUDEMESH_REQUIRE_SERVICES") != "1" or call.excinfo is None:
        return None
    if call.excinfo.errisinstance(pytest.skip.Exception):
        from _pytest.reports import TestReport

        report = TestReport.from_item_and_call(item, call)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every service is available: {call.excinfo.value}"
        return report
    return None


# --- the test run leaves the tree clean ---------------------------------------------------------------------
# Tests write their outputs (reliability figures, screenshots) under var/test-results/; `make docs-refresh`
# copies them into docs/ on purpose. A run that rewrites those tracked copies fails.
TRACKED_OUTPUTS = ("docs/reliability-results.json", "docs/screenshots")


def _tracked_output_digests() -> dict[str, str]:
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digests = {}
    for name in TRACKED_OUTPUTS:
        path = root / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digests[str(file.relative_to(root))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return digests


def pytest_sessionstart(session):
    session.config._tracked_outputs = _tracked_output_digests()


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks once
        return
    before = getattr(session.config, "_tracked_outputs", None)
    if before is None:
        return
    after = _tracked_output_digests()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        print(f"\nthe test run rewrote tracked files: {', '.join(changed)} (tests write to var/test-results/)")
        session.exitstatus = 1
