"""(being built)"""
from __future__ import annotations

from control.console.blueprint import bp  # noqa: F401
