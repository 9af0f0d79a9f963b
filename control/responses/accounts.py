"""API tokens and base models as the API shows them."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import Out, Timestamp


class TokenOut(Out):
    """An API token: never the token itself, only its first characters."""

    id: str
    name: str | None
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    status: Literal["active", "revoked", "expired"]


class TokenCreated(TokenOut):
    token: str = Field(description="the plain token: shown in this answer only")


class TokenList(Out):
    data: list[TokenOut]


class BaseModelOut(Out):
    """A base model a job may train on: configured by the operator, or registered by an admin."""

    name: str = Field(description="embedded, or a Hugging Face id ORG/NAME")
    source: Literal["configured", "registered"]
    description: str | None
    added_by: str | None = Field(description="the admin who registered it")
    created_at: Timestamp | None = Field(description="when it was registered")


class BaseModelList(Out):
    data: list[BaseModelOut]
    default: str = Field(description="the base model of a job that names none")
