"""(being built)"""
from __future__ import annotations

from control.api.blueprint import bp  # noqa: F401
