"""Which base models a job may train on: ``embedded``, those the operator lists in
``BASE_MODELS``, and the hub ids an admin registers (``RegisteredBaseModel``). Anything else
is refused, naming the allowed values, before a job is stored or queued: a user never makes
the worker open a path of its own choosing, nor fetch a repository nobody allowed.

``BASE_MODELS`` is the operator's (the environment): hub ids, and absolute paths of model
directories or ``.gguf`` files on the worker's disk (a network volume). What admins register
at run time, through the API or ``pipeline base-models add``, is a hub id only. Local paths
from anyone else stay with the command line's local ``pipeline train``, which does not go
through the service.
"""
from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import select

from control.extensions import db
from control.models import RegisteredBaseModel, User
from control.services.exceptions import Conflict, Forbidden, NotFound
from shared.errors import ConfigError, Problem

EMBEDDED = "embedded"
MAX_NAME = 255
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"{_PART}/{_PART}")


def hub_id_problem(name: str) -> str | None:
    """Why ``name`` is not a Hugging Face model id (``ORG/NAME``), or None if it is one.

    >>> hub_id_problem("meta-llama/Meta-Llama-3-70B-Instruct") is None
    True
    >>> for bad in ("/root/.ssh", "../x", "file:///etc", "org/../x", "org/model.gguf", "llama", "a/b/c"):
    ...     print(bad, "->", hub_id_problem(bad))
    /root/.ssh -> a path, not a hub id
    ../x -> a path, not a hub id
    file:///etc -> a URL, not a hub id
    org/../x -> a path, not a hub id
    org/model.gguf -> a GGUF file, not a hub id
    llama -> expected ORG/NAME (letters, digits, '-', '_' and '.')
    a/b/c -> expected ORG/NAME (letters, digits, '-', '_' and '.')
    """
    if not name or len(name) > MAX_NAME:
        return f"expected ORG/NAME of 1 to {MAX_NAME} characters"
    if "://" in name or name.lower().startswith(("file:", "http:", "https:", "hf:")):
        return "a URL, not a hub id"
    if name.startswith(("/", "~", ".", "\\")) or ".." in name or "\\" in name:
        return "a path, not a hub id"
    if name.lower().endswith(".gguf"):
        return "a GGUF file, not a hub id"
    if not HUB_ID.fullmatch(name):
        return "expected ORG/NAME (letters, digits, '-', '_' and '.')"
    return None


def check_configured(names) -> None:
    """Refuse, at start-up, a ``BASE_MODELS`` entry that is neither ``embedded``, a hub id,
    nor an absolute path on the worker.

    >>> check_configured(["embedded", "org/model", "/runpod-volume/models/llama"])
    >>> check_configured(["https://example.com/model"])
    Traceback (most recent call last):
    ...
    ValueError: BASE_MODELS: 'https://example.com/model' is a URL, not a hub id; expected embedded, ORG/NAME or an absolute path on the worker
    """
    for name in names:
        if name == EMBEDDED or (name.startswith("/") and ".." not in name.split("/")):
            continue
        problem = hub_id_problem(name)
        if problem:
            raise ValueError(f"BASE_MODELS: {name!r} is {problem}; expected embedded, ORG/NAME "
                             "or an absolute path on the worker")


def configured() -> list[str]:
    """``embedded`` and the operator's ``BASE_MODELS``, in their order."""
    return list(dict.fromkeys([EMBEDDED, *current_app.config["BASE_MODELS"]]))


def current_default() -> str:
    """The base model a job gets when it names none (``DEFAULT_BASE_MODEL``)."""
    return current_app.config["DEFAULT_BASE_MODEL"]


def registered() -> list[RegisteredBaseModel]:
    return list(db.session.scalars(select(RegisteredBaseModel).order_by(RegisteredBaseModel.name)))


def allowed() -> list[str]:
    """Every base model a job may use: the configured ones, then the registered ones."""
    return list(dict.fromkeys([*configured(), *(m.name for m in registered())]))


def shown(row: RegisteredBaseModel) -> dict:
    """A registered model as the API and the command line show it."""
    out = row.to_dict()
    out.pop("id", None)
    return {"name": out.pop("name"), "source": "registered", **out}


def listing() -> list[dict]:
    """The allowed base models, each with where it comes from (``configured`` or ``registered``)."""
    out = [{"name": name, "source": "configured", "description": None, "added_by": None,
            "created_at": None} for name in configured()]
    names = {m["name"] for m in out}
    return out + [shown(m) for m in registered() if m.name not in names]


def require_allowed(name: str) -> str:
    """``name`` if a job may train on it; else a ``ConfigError`` on ``base_model`` that lists
    the allowed values (a 400 before anything is stored or queued)."""
    choices = allowed()
    if name in choices:
        return name
    shown = name if len(name) <= 80 else name[:77] + "..."
    problem = hub_id_problem(name)
    why = (f"{problem}: the service takes no local paths, files or URLs"
           if problem and "ORG/NAME" not in problem else "not on this deployment's list")
    raise ConfigError([Problem("job", f"base model {shown!r} is not allowed ({why}); choose one of "
                               + ", ".join(choices) + ". An admin adds a hub model with "
                               "`pipeline base-models add ORG/NAME` or POST /api/base-models.",
                               "base_model")])


def _admin(by: User | None, action: str) -> None:
    if by is not None and not by.is_admin:
        raise Forbidden(f"only admins can {action} base models; ask an admin, or run "
                        f"`pipeline base-models {action.split()[0]} ORG/NAME` on the server")


def register(name: str, description: str | None = None, by: User | None = None) -> RegisteredBaseModel:
    """Allow the hub model ``name`` for every job. ``by``: the admin asking (None: the
    operator's command line). Commits."""
    _admin(by, "add")
    name = name.strip()
    problem = hub_id_problem(name)
    if problem:
        raise ConfigError([Problem("base model", f"{name[:80]!r} is {problem}: register a Hugging Face "
                                   "model id such as meta-llama/Meta-Llama-3-8B-Instruct", "name")])
    if name in configured():
        raise Conflict(f"base model {name!r} is already allowed by BASE_MODELS", "already_allowed")
    if db.session.scalar(select(RegisteredBaseModel).where(RegisteredBaseModel.name == name)):
        raise Conflict(f"base model {name!r} is already registered", "already_registered")
    row = RegisteredBaseModel(name=name, description=description or None, added_by=by.id if by else None)
    db.session.add(row)
    db.session.commit()
    return row


def remove(name: str, by: User | None = None) -> None:
    """Withdraw a registered model: new jobs may no longer use it; jobs that did keep it.
    Commits."""
    _admin(by, "remove")
    row = db.session.scalar(select(RegisteredBaseModel).where(RegisteredBaseModel.name == name))
    if row is None:
        if name in configured():
            raise Conflict(f"base model {name!r} comes from BASE_MODELS, not a registration: "
                           "change the setting to withdraw it", "configured")
        raise NotFound("registered base model", name)
    db.session.delete(row)
    db.session.commit()
