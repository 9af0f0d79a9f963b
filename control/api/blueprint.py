"""The JSON API's blueprint, at ``/api``: every route module registers on it, and every
request but the OpenAPI document and signed links carries a bearer token."""
from flask import Blueprint

from control.api.auth import authenticate

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(authenticate)
