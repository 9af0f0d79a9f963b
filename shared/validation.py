"""Turn pydantic validation errors into the product's :class:`Problem` list."""
from __future__ import annotations

from shared.errors import ConfigError, Problem


def problems_from(exc, where: str) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        problems.append(Problem(where, msg, loc or None))
    return problems


def config_error(exc, where: str) -> ConfigError:
    return ConfigError(problems_from(exc, where))
