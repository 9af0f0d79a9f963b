"""Request schemas of user admin (``/api/users`` and the console's users page validate with
these same models)."""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from control.schemas import Text, _Strict

Role = Literal["admin", "engineer", "reviewer"]
#: One ``@``, something either side, no spaces; dots only between labels.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)*")


class CreateUser(_Strict):
    """A new user: they get a one-time set-password link (shown once) to choose a password."""

    email: Annotated[Text(320, min_length=3), Field(description="their sign-in email (stored in lower case)")]
    role: Annotated[Role, Field(description=(
        "engineer; reviewer: an engineer who also scores answers blind and approves deliveries; admin"))] = "engineer"

    @field_validator("email")
    @classmethod
    def _an_email(cls, value: str) -> str:
        value = value.strip()
        if not _EMAIL.fullmatch(value):
            raise PydanticCustomError("email", "{value} is not an email address (name@example.com)",
                                      {"value": repr(value)})
        return value.lower()


class UpdateUser(_Strict):
    """A role change, or deactivating (``active: false``) or reactivating; at least one."""

    role: Role | None = None
    active: Annotated[bool | None, Field(description=(
        "false: deactivate (their sessions and tokens stop at their next request); true: reactivate"))] = None

    @model_validator(mode="after")
    def _something(self):
        if self.role is None and self.active is None:
            raise PydanticCustomError("empty_update", "give role or active (or both)")
        return self


class SetPassword(_Strict):
    """The set-password page's form: the password, twice."""

    password: Text(200, min_length=1)
    confirm: Text(200, min_length=1)
