"""Dashboard forms. They parse and type what people type; every rule (ranges, roles, who may act) stays in
meshes.services, whose ServiceError messages the views attach back onto these forms.
"""

from __future__ import annotations

from django import forms
from django.conf import settings

from meshes.models import ApiKeyCapability, Role

INVITE_ROLE_CHOICES = [(Role.MEMBER.value, "Member"), (Role.ADMIN.value, "Admin")]
ASSIGNABLE_ROLE_CHOICES = INVITE_ROLE_CHOICES
CAPABILITY_HELP = {
    ApiKeyCapability.SEND: "post messages",
    ApiKeyCapability.READ: "read topics, messages and peers",
    ApiKeyCapability.STATE_WRITE: "write shared state (reserved)",
    ApiKeyCapability.ADMIN: "every capability",
}


class MeshNameForm(forms.Form):
    name = forms.CharField(
        label="Mesh name",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Platform team", "autocomplete": "off"}),
    )


class MemberNameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)


class MeshCreateForm(MeshNameForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autofocus"] = True


def _range_messages(text: str) -> dict[str, str]:
    return {"min_value": text, "max_value": text, "invalid": text}


class InviteCreateForm(forms.Form):
    """Its ranges are the service's (the same settings), here so the browser and the form show every bad field
    at once, each next to its input; the service still checks them."""

    role = forms.ChoiceField(choices=INVITE_ROLE_CHOICES, initial=Role.MEMBER.value)
    max_uses = forms.IntegerField(
        label="Uses", initial=1, min_value=1, max_value=settings.INVITE_MAX_USES, help_text=f"1–{settings.INVITE_MAX_USES}",
        error_messages=_range_messages(f"max uses must be between 1 and {settings.INVITE_MAX_USES}"),
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", initial=settings.INVITE_DEFAULT_DAYS, min_value=1, max_value=settings.INVITE_MAX_DAYS,
        help_text=f"1–{settings.INVITE_MAX_DAYS}",
        error_messages=_range_messages(f"expiry (days) must be between 1 and {settings.INVITE_MAX_DAYS}"),
    )


class ApiKeyCreateForm(forms.Form):
    label = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "e.g. ci-bot"}))
    capabilities = forms.MultipleChoiceField(
        choices=[(cap.value, f"{cap.value} — {CAPABILITY_HELP[cap]}") for cap in ApiKeyCapability],
        initial=[ApiKeyCapability.SEND.value, ApiKeyCapability.READ.value],
        widget=forms.CheckboxSelectMultiple,
        required=False,  # the service explains "choose at least one capability"
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", required=False, min_value=1, max_value=3650, help_text="empty: never expires"
    )
    member_id = forms.ChoiceField(
        label="Acts as", required=False,
        help_text="the member a bot holding this key sends and reads as (it must hold that member's key); "
                  "none: the key only reads lists and history",
    )

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member_id"].choices = [("", "— no member —")] + [(m.id, m.display_name) for m in members]


class ApiKeyRevokeForm(forms.Form):
    key_ref = forms.CharField(
        label="Key id or id prefix",
        max_length=64,
        help_text="the full id, or at least its first 6 characters",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 3fK9a1Qz", "autocomplete": "off", "spellcheck": "false"}),
    )


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ASSIGNABLE_ROLE_CHOICES)


class ArchiveConfirmForm(forms.Form):
    """Archiving cannot be undone from the dashboard, so the person types the mesh's name to confirm."""

    confirm_name = forms.CharField(label="Type the mesh name to confirm", max_length=200)

    def __init__(self, *args, mesh_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.mesh_name = mesh_name

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"].strip()
        if typed != self.mesh_name:
            raise forms.ValidationError(f"type “{self.mesh_name}” exactly to archive this mesh")
        return typed
