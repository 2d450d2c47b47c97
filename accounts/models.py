from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from protocol.ids import new_id


class User(AbstractUser):
    """A person who signs in to the dashboard. E-mail is the login; allauth fills `username` itself."""

    email = models.EmailField("e-mail address", unique=True)

    def __str__(self) -> str:
        return self.email or self.username


class DeviceCodeStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


class TerminalFacts(models.Model):
    """What a terminal says about its machine (and the address it called from): shown to the person approving
    it, and in the list of signed-in terminals."""

    hostname = models.CharField(max_length=255, blank=True, default="")
    platform = models.CharField(max_length=64, blank=True, default="")
    arch = models.CharField(max_length=64, blank=True, default="")
    ip_address = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True


class DeviceCode(TerminalFacts):
    """One `claudemesh login` in progress (protocol.md §6.7). The CLI polls with the device code, which is kept
    only as a digest; the person approves by the session id (in the browser URL) while signed in."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    device_code_digest = models.CharField(max_length=64, unique=True, editable=False)
    user_code = models.CharField(max_length=9, db_index=True)
    session_id = models.CharField(max_length=48, unique=True)
    status = models.CharField(max_length=8, choices=DeviceCodeStatus.choices, default=DeviceCodeStatus.PENDING)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"device code {self.user_code} ({self.status})"

    def is_expired(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())


class CliSession(TerminalFacts):
    """A signed-in terminal: the bearer token of `/cli/*` and `/api/my/*`, stored only as its SHA-256."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="cli_sessions")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    kind = models.CharField(max_length=12, default="device-code")  # device-code | paste-token
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="cli_session_user_created_idx")]

    def __str__(self) -> str:
        return f"CLI session {self.id[:8]} of {self.user_id}"

    def status(self, now=None) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"
