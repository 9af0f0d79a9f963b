"""Collects every problem in an input, each with its place, capped for display."""
from __future__ import annotations

from shared.dataset.types import ROLES, Message
from shared.errors import Problem

MAX_LISTED = 200


class ProblemList:
    def __init__(self, max_listed: int = MAX_LISTED):
        self.items: list[Problem] = []
        self.total = 0
        self.max_listed = max_listed

    def add(self, where: str, message: str, field: str | None = None) -> None:
        self.total += 1
        if len(self.items) < self.max_listed:
            self.items.append(Problem(where, message, field))

    def __bool__(self) -> bool:
        return self.total > 0


def type_name(value) -> str:
    """The JSON name of a Python value's type, for messages.

    >>> type_name(None), type_name(3), type_name([1]), type_name(True)
    ('null', 'number', 'array', 'boolean')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def read_message(msg, where: str, field: str, problems: ProblemList) -> Message | None:
    """One ``{"role", "content"}`` object, or None after recording what is wrong with it."""
    if not isinstance(msg, dict):
        problems.add(where, f"expected a message object, got {type_name(msg)}", field)
        return None
    role, content = msg.get("role"), msg.get("content")
    ok = True
    if role not in ROLES:
        problems.add(where, f"unknown role {role!r}: expected one of "
                     + ", ".join(f'"{r}"' for r in ROLES), f"{field}.role")
        ok = False
    if not isinstance(content, str):
        problems.add(where, "expected a string, got "
                     f"{type_name(content) if 'content' in msg else 'nothing'}", f"{field}.content")
        ok = False
    return Message(role, content) if ok else None
