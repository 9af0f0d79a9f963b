"""(Being built: issue 14.)"""
from control.api.blueprint import bp  # noqa: F401
