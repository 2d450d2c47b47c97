"""The topics tab: every topic with its member count, message count and last activity (metadata only: the server
holds ciphertext it cannot read), and a topic's members, which managers and the topic's leads change."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meshes import selectors, selectors_topics, services
from meshes.errors import NotFound, ServiceError
from meshes.views.common import error_status, mesh_context, mesh_view, post_only


@mesh_view
def topic_list(request: HttpRequest, actor) -> HttpResponse:
    context = {**mesh_context(actor, tab="topics"), "topics": selectors_topics.topics_overview(actor=actor)}
    return render(request, "dashboard/topics.html", context)


def _topic_page(request: HttpRequest, actor, topic_id: str, *, error: str | None = None, status: int = 200) -> HttpResponse:
    try:
        topic = selectors_topics.topic_for_page(actor=actor, topic_id=topic_id)
    except NotFound:
        raise Http404("topic not found") from None
    subscriptions = selectors_topics.topic_subscriptions(topic=topic)
    inside = {s.member_id for s in subscriptions}
    context = {
        **mesh_context(actor, tab="topics"),
        "topic": topic,
        "subscriptions": subscriptions,
        "can_change": selectors_topics.may_manage_topic(actor=actor, topic=topic),
        "addable": [m for m in selectors.members_for_mesh(mesh=actor.mesh) if m.id not in inside and m.is_active],
        "error": error,
    }
    return render(request, "dashboard/topic_detail.html", context, status=status)


@mesh_view
def topic_detail(request: HttpRequest, actor, topic_id: str) -> HttpResponse:
    return _topic_page(request, actor, topic_id)


@mesh_view
@post_only("dashboard:topics")
def topic_member_add(request: HttpRequest, actor, topic_id: str) -> HttpResponse:
    try:
        subscription = services.topic_join(actor=actor, topic_ref=topic_id, member_id=request.POST.get("member_id") or None,
                                           role=request.POST.get("role") or None)
    except ServiceError as error:
        return _topic_page(request, actor, topic_id, error=error.message, status=error_status(error))
    messages.success(request, f"{subscription.member.display_name} is in #{subscription.topic.name}; the next message "
                              "there is encrypted for them too.")
    return redirect("dashboard:topic", mesh_id=actor.mesh.id, topic_id=topic_id)


@mesh_view
@post_only("dashboard:topics")
def topic_member_remove(request: HttpRequest, actor, topic_id: str, member_id: str) -> HttpResponse:
    try:
        services.topic_leave(actor=actor, topic_ref=topic_id, member_id=member_id)
    except ServiceError as error:
        return _topic_page(request, actor, topic_id, error=error.message, status=error_status(error))
    messages.success(request, "Removed from the topic: the next message there starts a new key it does not get.")
    return redirect("dashboard:topic", mesh_id=actor.mesh.id, topic_id=topic_id)
