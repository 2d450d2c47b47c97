from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone

from accounts.models import CliSession, User


@admin.register(User)
class ClaudemeshUserAdmin(UserAdmin):
    list_display = ("email", "username", "is_active", "is_staff", "date_joined", "last_login")
    search_fields = ("email", "username", "first_name", "last_name")
    ordering = ("-date_joined",)


@admin.register(CliSession)
class CliSessionAdmin(admin.ModelAdmin):
    """Signed-in terminals: metadata only (the token exists only as its hash); revoking signs one out at once."""

    list_display = ("user", "hostname", "kind", "created_at", "last_seen_at", "expires_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("user__email", "hostname")
    readonly_fields = ("user", "kind", "hostname", "platform", "arch", "ip_address", "created_at", "last_seen_at",
                       "expires_at", "revoked_at")
    exclude = ("token_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke (sign out) the selected terminals")
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} terminal session(s).")
