"""Django admin for meshes. A read-mostly window for site staff.

Secrets never appear: fields are listed explicitly (never `__all__`), so the sealed mesh keys, invite tokens
and capabilities and the API key hashes are simply not part of any list, form or inline. Changes that carry a
rule (revoke, archive) are admin actions that call meshes.services, which audits them.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils import timezone

from meshes import selectors, services
from meshes.audit import audit_verify
from meshes.models import (
    ApiKey,
    AuditEvent,
    Invite,
    Member,
    Memory,
    Mesh,
    ScheduledMessage,
    StateEntry,
    Task,
    Topic,
    TopicMember,
    Webhook,
)


class ReadOnlyAdminMixin:
    """Rows are made by services (keys, audit chain); the admin only views them and runs audited actions."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RevokeActionsMixin:
    def has_revoke_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


class NullDateFilter(admin.SimpleListFilter):
    """Yes/no on whether a timestamp column is set (archived, revoked)."""

    field = ""

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class ArchivedFilter(NullDateFilter):
    title, parameter_name, field = "archived", "archived", "archived_at"


class RevokedFilter(NullDateFilter):
    title, parameter_name, field = "revoked", "revoked", "revoked_at"


# --- inlines on the mesh page ---------------------------------------------------------------------------


class MemberInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Member
    fields = readonly_fields = ("display_name", "user", "role", "pubkey", "joined_at", "last_seen_at", "revoked_at")
    extra = 0
    show_change_link = True


class InviteInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Invite
    fk_name = "mesh"
    fields = readonly_fields = ("code", "role", "used_count", "max_uses", "expires_at", "created_by", "revoked_at")
    extra = 0
    show_change_link = True


class ApiKeyInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiKey
    fields = readonly_fields = ("label", "secret_prefix", "capabilities", "last_used_at", "expires_at", "revoked_at")
    extra = 0
    show_change_link = True


# --- models ---------------------------------------------------------------------------------------------


@admin.register(Mesh)
class MeshAdmin(ReadOnlyAdminMixin, RevokeActionsMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "short_id", "owner", "member_count", "created_at", "archived_at")
    list_filter = (ArchivedFilter, "created_at")
    search_fields = ("id", "name", "slug", "owner__email")
    date_hierarchy = "created_at"
    fields = readonly_fields = ("id", "name", "slug", "owner", "owner_pubkey", "created_at", "archived_at")
    inlines = (MemberInline, InviteInline, ApiKeyInline)
    actions = ("archive_meshes", "verify_audit_chains")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("owner")
            .annotate(live_members=Count("members", filter=Q(members__revoked_at=None)))
        )

    @admin.display(description="id")
    def short_id(self, mesh):
        return mesh.id[:8]

    @admin.display(description="members", ordering="live_members")
    def member_count(self, mesh):
        return mesh.live_members

    @admin.action(description="Archive selected meshes (audited)", permissions=["revoke"])
    def archive_meshes(self, request, queryset):
        for mesh in queryset:
            services.mesh_archive(actor=selectors.actor_for_staff(mesh=mesh, user=request.user))
        self.message_user(request, f"Archived {queryset.count()} mesh(es).", messages.SUCCESS)

    @admin.action(description="Verify audit chains")
    def verify_audit_chains(self, request, queryset):
        for mesh in queryset:
            verdict = audit_verify(mesh_id=mesh.id)
            if verdict.ok:
                self.message_user(request, f"{mesh}: chain verified ({verdict.events} events).", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{mesh}: chain broken at event {verdict.broken_at_position} ({verdict.reason}).",
                    messages.ERROR,
                )


@admin.register(Member)
class MemberAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("display_name", "mesh", "user", "role", "short_pubkey", "joined_at", "last_seen_at", "revoked_at")
    list_filter = ("role", RevokedFilter, "message_mode")
    search_fields = ("id", "display_name", "pubkey", "user__email", "mesh__name", "mesh__id")
    list_select_related = ("mesh", "user")
    fields = readonly_fields = (
        "id",
        "mesh",
        "user",
        "display_name",
        "role",
        "role_tag",
        "pubkey",
        "default_groups",
        "message_mode",
        "peer_grants",
        "invite",
        "joined_at",
        "last_seen_at",
        "revoked_at",
    )

    @admin.display(description="pubkey")
    def short_pubkey(self, member):
        return f"{member.pubkey[:12]}…" if member.pubkey else "—"


class InviteStateFilter(admin.SimpleListFilter):
    title, parameter_name = "state", "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired"), ("exhausted", "exhausted")]

    def queryset(self, request, queryset):
        from django.db.models import F

        now = timezone.now()
        live = queryset.filter(revoked_at=None)
        return {
            "active": live.filter(expires_at__gt=now, used_count__lt=F("max_uses")),
            "revoked": queryset.exclude(revoked_at=None),
            "expired": live.filter(expires_at__lte=now),
            "exhausted": live.filter(expires_at__gt=now, used_count__gte=F("max_uses")),
        }.get(self.value(), queryset)


@admin.register(Invite)
class InviteAdmin(ReadOnlyAdminMixin, RevokeActionsMixin, admin.ModelAdmin):
    list_display = ("code", "mesh", "role", "state", "used_count", "max_uses", "expires_at", "created_by", "created_at")
    list_filter = (InviteStateFilter, "role", "version", "created_at")
    search_fields = ("id", "code", "mesh__name", "mesh__id", "created_by__email")
    list_select_related = ("mesh", "created_by")
    fields = readonly_fields = (
        "id",
        "mesh",
        "code",
        "role",
        "version",
        "max_uses",
        "used_count",
        "preset",
        "expires_at",
        "created_by",
        "created_by_member",
        "created_at",
        "revoked_at",
        "claimed_by_pubkey",
    )
    actions = ("revoke_invites",)

    @admin.display(description="state")
    def state(self, invite):
        return invite.state()

    @admin.action(description="Revoke selected invites (audited)", permissions=["revoke"])
    def revoke_invites(self, request, queryset):
        for invite in queryset:
            services.invite_revoke(
                actor=selectors.actor_for_staff(mesh=invite.mesh, user=request.user), invite_id=invite.id
            )
        self.message_user(request, f"Revoked {queryset.count()} invite(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, RevokeActionsMixin, admin.ModelAdmin):
    list_display = ("label", "mesh", "masked_secret", "capabilities", "status", "last_used_at", "created_at")
    list_filter = (RevokedFilter, "created_at")
    search_fields = ("id", "label", "secret_prefix", "mesh__name", "mesh__id")
    list_select_related = ("mesh",)
    fields = readonly_fields = (
        "id",
        "mesh",
        "label",
        "masked_secret",
        "capabilities",
        "topic_scopes",
        "issued_by_member",
        "issued_by_user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    actions = ("revoke_keys",)

    @admin.display(description="secret")
    def masked_secret(self, key):
        return f"{key.secret_prefix}…"

    @admin.display(description="status")
    def status(self, key):
        return key.status()

    @admin.action(description="Revoke selected API keys (audited)", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(actor=selectors.actor_for_staff(mesh=key.mesh, user=request.user), key_ref=key.id)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "mesh", "event_type", "actor_display_name", "short_hash")
    list_filter = ("event_type", "created_at")
    search_fields = ("event_type", "actor_display_name", "actor_member_id", "mesh__id", "mesh__name")
    list_select_related = ("mesh",)
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "id",
        "mesh",
        "event_type",
        "actor_member_id",
        "actor_display_name",
        "payload",
        "prev_hash",
        "hash",
        "created_at",
    )

    @admin.display(description="hash")
    def short_hash(self, event):
        return event.hash[:12]


class TopicMemberInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TopicMember
    fields = readonly_fields = ("member", "role", "joined_at", "last_read_at")
    extra = 0


@admin.register(Topic)
class TopicAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Metadata only: a topic's history is ciphertext the server cannot read, so it is not shown at all."""

    list_display = ("name", "mesh", "visibility", "created_by", "created_at", "archived_at")
    list_filter = ("visibility", ArchivedFilter)
    search_fields = ("name", "mesh__id", "mesh__name")
    list_select_related = ("mesh", "created_by")
    fields = readonly_fields = ("id", "mesh", "name", "description", "visibility", "created_by", "created_at",
                                "archived_at")
    inlines = [TopicMemberInline]


# Coordination: metadata only. Values, memories, titles, results and reminder texts from our clients are sealed;
# a reference client's plaintext is not shown here either.


@admin.register(StateEntry)
class StateEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = fields = readonly_fields = ("key", "mesh", "version", "encrypted", "updated_by_name", "updated_at")
    search_fields = ("key", "mesh__id", "mesh__name")
    list_select_related = ("mesh",)


@admin.register(Memory)
class MemoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = fields = readonly_fields = ("id", "mesh", "encrypted", "remembered_by_name", "created_at",
                                               "forgotten_at")
    search_fields = ("id", "mesh__id", "mesh__name")
    list_select_related = ("mesh",)


@admin.register(Task)
class TaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "mesh", "status", "priority", "assignee", "claimed_by_name", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "assignee", "mesh__id", "mesh__name")
    list_select_related = ("mesh",)
    fields = readonly_fields = ("id", "mesh", "status", "priority", "assignee", "tags", "encrypted", "created_by_name",
                                "created_at", "claimed_by_name", "claimed_at", "completed_by_name", "completed_at")


@admin.register(ScheduledMessage)
class ScheduledMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "mesh", "member", "to", "deliver_at", "cron", "fired_count", "cancelled_at", "finished_at")
    search_fields = ("id", "mesh__id", "mesh__name", "member__display_name")
    list_select_related = ("mesh", "member")
    fields = readonly_fields = ("id", "mesh", "member", "to", "encrypted", "cron", "time_zone", "deliver_at",
                                "fired_count", "last_fired_at", "last_error", "created_at", "cancelled_at", "finished_at")


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Metadata only: the URL secret and the HMAC secret are never shown here."""

    list_display = fields = readonly_fields = ("name", "mesh", "active", "signed", "rate_per_minute", "max_body_bytes",
                                               "delivery_count", "last_delivery_at", "created_at", "deleted_at")
    search_fields = ("name", "mesh__id", "mesh__name")
    list_select_related = ("mesh",)

    @admin.display(boolean=True)
    def active(self, obj: Webhook) -> bool:
        return obj.active

    @admin.display(boolean=True)
    def signed(self, obj: Webhook) -> bool:
        return obj.signed
