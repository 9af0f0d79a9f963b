"""The console's blueprint, at ``/``: every page module registers on it."""
from flask import Blueprint

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console-static")
