"""(Being built: issue 14.)"""
from control.console.blueprint import bp  # noqa: F401
