"""`/api/v1` lists page with a stable cursor: every row exactly once, in order, even when rows are added between
pages; a forged cursor or a bad limit is a 422 with its code."""

from __future__ import annotations

import pytest

from tests.support.identities import new_identity

pytestmark = pytest.mark.django_db


def test_members_and_keys_page_with_a_stable_cursor(api, mesh, key_factory):
    _, secret = key_factory(("read", "admin"))
    for n in range(5):
        new_identity(mesh, f"m{n}")
    first = api.get("/api/v1/members?limit=3", secret).json()
    assert len(first["members"]) == 3 and first["nextCursor"]
    new_identity(mesh, "late")  # joined after the first page: it comes at the end, nothing shifts
    second = api.get(f"/api/v1/members?limit=3&after={first['nextCursor']}", secret).json()
    third = api.get(f"/api/v1/members?limit=3&after={second['nextCursor']}", secret).json()
    names = [m["displayName"] for page in (first, second, third) for m in page["members"]]
    assert len(names) == len(set(names)) == 7 and names[-1] == "late" and third["nextCursor"] is None
    for n in range(3):
        key_factory(("read",), label=f"k{n}")
    keys = api.get("/api/v1/api-keys?limit=2", secret).json()
    rest = api.get(f"/api/v1/api-keys?after={keys['nextCursor']}", secret).json()
    labels = [k["label"] for k in keys["keys"] + rest["keys"]]
    assert labels == ["k2", "k1", "k0", "test key"] and rest["nextCursor"] is None  # newest first


def test_bad_cursors_and_limits_are_refused(api, key_factory):
    _, secret = key_factory(("read",))
    assert api.get("/api/v1/members?after=not-a-cursor", secret).json()["code"] == "invalid_cursor"
    assert api.get("/api/v1/members?limit=0", secret).status_code == 422
    assert api.get("/api/v1/members?limit=201", secret).json()["code"] == "invalid_limit"
