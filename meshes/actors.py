"""Who is acting on a mesh: a member (dashboard user or peer) or an API key. Services take one of these."""

from __future__ import annotations

from dataclasses import dataclass

from meshes.errors import Forbidden
from meshes.models import ApiKey, ApiKeyCapability, Member, Mesh, Role


@dataclass(frozen=True)
class Actor:
    mesh: Mesh
    member: Member | None = None
    api_key: ApiKey | None = None
    via: str = "dashboard"  # dashboard | api | cli | broker | admin
    # Site staff acting from the Django admin, outside any membership: the mesh owner's powers.
    staff_user: object | None = None

    @property
    def is_staff(self) -> bool:
        user = self.staff_user
        return bool(user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False))

    @property
    def is_manager(self) -> bool:
        if self.is_staff:
            return True
        if self.api_key is not None:
            return self.api_key.has_capability(ApiKeyCapability.ADMIN)
        return self.member is not None and self.member.is_manager

    @property
    def is_owner(self) -> bool:
        return self.is_staff or (self.member is not None and self.member.role == Role.OWNER)

    @property
    def member_id(self) -> str | None:
        return self.member.id if self.member else None

    @property
    def display_name(self) -> str:
        if self.staff_user is not None:
            return f"staff {self.staff_user.get_username()}"[:200]
        if self.api_key is not None:
            return f"api key {self.api_key.label}"
        return self.member.display_name if self.member else "system"

    def user(self):
        if self.staff_user is not None:
            return self.staff_user
        return self.member.user if self.member else None

    def require_manager(self) -> None:
        if not self.is_manager:
            raise Forbidden("forbidden", "only the mesh owner or an admin can do that")

    def require_owner(self) -> None:
        if not self.is_owner:
            raise Forbidden("forbidden", "only the mesh owner can do that")
