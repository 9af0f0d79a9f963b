"""Users as ``/api/users`` (admins) answers them."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import Out, Timestamp


class UserOut(Out):
    id: str
    email: str
    role: Literal["admin", "engineer", "reviewer"]
    status: Literal["active", "invited", "deactivated"] = Field(description=(
        "invited: no password yet (a set-password link waits)"))
    created_at: Timestamp
    deactivated_at: Timestamp | None
    last_seen_at: Timestamp | None = Field(description="the newest console request or API token use")
    jobs: int = Field(description="the jobs they created (a deactivated user's stay theirs)")
    password_link_expires_at: Timestamp | None = Field(description="a set-password link waiting to be used")


class UserList(Out):
    data: list[UserOut]


class PasswordLinkCreated(Out):
    """A one-time set-password link: shown in this answer only (only its sha256 is kept)."""

    user: UserOut
    set_password_url: str = Field(description="open it to choose a password; it works once")
    expires_at: Timestamp
