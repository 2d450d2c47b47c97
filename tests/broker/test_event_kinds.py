"""Mesh events have a schema: every kind a service publishes reaches a listener, or is declared audit-only."""

from __future__ import annotations

import pytest

from meshes import events
from meshes.events import AUDIT_ONLY, MeshEvent, MeshEventKind, listeners_of


def test_every_event_kind_has_a_listener_or_is_audit_only():
    """Given the broker app loaded (it subscribes at ready()), then no kind is published into the void."""
    unheard = [kind for kind in MeshEventKind if kind not in AUDIT_ONLY and not listeners_of(kind)]
    assert unheard == []
    assert all(not listeners_of(kind) for kind in AUDIT_ONLY)  # audit-only means nobody listens


def test_an_audit_only_kind_cannot_be_subscribed_to():
    with pytest.raises(ValueError, match="audit-only"):
        events.subscribe(next(iter(AUDIT_ONLY)), lambda event: None)


def test_an_undeclared_kind_is_refused_where_it_is_published():
    with pytest.raises(ValueError):
        MeshEvent("member_renamed", "mesh")


@pytest.mark.django_db(transaction=True)
def test_listeners_hear_only_their_kind(monkeypatch):
    """Given a listener for one kind, when another kind is published and committed, then it is not called."""
    heard: list[MeshEvent] = []
    monkeypatch.setattr(events, "_listeners", {MeshEventKind.MESH_ARCHIVED: [heard.append]})
    events.publish_after_commit(MeshEvent(MeshEventKind.MEMBER_REVOKED, "m1", {"memberId": "x"}))
    events.publish_after_commit(MeshEvent(MeshEventKind.MESH_ARCHIVED, "m1"))
    assert [event.kind for event in heard] == [MeshEventKind.MESH_ARCHIVED]
