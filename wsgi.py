"""WSGI entry: `gunicorn wsgi:app`."""
from control.app import create_app

app = create_app()
