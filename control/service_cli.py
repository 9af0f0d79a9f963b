"""The service commands of ``pipeline``: run the system, and administer it.

    pipeline up [--port P] [--workers N]       everything, in the foreground (Ctrl-C stops it)
    pipeline serve [--port P]                  the web server (console at /, API at /api)
    pipeline worker                            an RQ worker (with the scheduler)
    pipeline endpoint [--port P] [--workers N] the local RunPod-compatible endpoint
    pipeline users create EMAIL [--role R] [--password]
    pipeline users set-password EMAIL          a console password (asked twice, never echoed)
    pipeline tokens create EMAIL [--name N]    prints the token once
    pipeline db upgrade                        apply the migrations

The control plane (flask, sqlalchemy, rq, waitress) is an optional extra: ``pip install .``
gives the domain code and ``pipeline validate``/``convert`` without it. So each command
imports what it runs inside its own body, and ``pipeline --help`` works without the extra.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click


def _app():
    from control.app import create_app
    return create_app()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host, port, threads):
    """Serve the web app with waitress."""
    from waitress import serve as waitress_serve
    app = _app()
    click.echo(f"serving on http://{host}:{port}")
    waitress_serve(app, host=host, port=port, threads=threads, max_request_body_size=app.config["MAX_CONTENT_LENGTH"])


@click.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker(burst):
    """Run an RQ worker for the dispatch and monitor tasks; it also sweeps for lost ones."""
    from control.worker import work_forever
    app = _app()
    with app.app_context():
        work_forever(burst=burst)


@click.group()
def users():
    """Manage users."""


def _set_password(user, password: str) -> None:
    try:
        user.set_password(password)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="password") from None


PASSWORD_OPTION = dict(prompt=True, hide_input=True, confirmation_prompt=True,
                       envvar="BRIGHTRUN_PASSWORD",
                       help="The console password (asked for when not given; or $BRIGHTRUN_PASSWORD).")


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "engineer"]), default="engineer", show_default=True)
@click.option("--password", "with_password", is_flag=True,
              help="Also set a console password (asked for twice, or taken from $BRIGHTRUN_PASSWORD).")
def users_create(email, role, with_password):
    """Create a user; API tokens and a console password are theirs to add."""
    from control.extensions import db
    from control.models import User
    with _app().app_context():
        if db.session.query(User).filter_by(email=email).first():
            raise click.ClickException(f"user {email} already exists")
        user = User(email=email, role=role)
        if with_password:
            password = os.environ.get("BRIGHTRUN_PASSWORD") or click.prompt(
                "Password", hide_input=True, confirmation_prompt=True)
            _set_password(user, password)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created {role} {email} ({user.id})"
                   + ("; they can sign in to the console" if with_password else ""))


@users.command("set-password")
@click.argument("email")
@click.option("--password", **PASSWORD_OPTION)
def users_set_password(email, password):
    """Set (or change) EMAIL's console password."""
    from control.extensions import db
    from control.models import User
    with _app().app_context():
        user = db.session.query(User).filter_by(email=email).first()
        if user is None:
            raise click.ClickException(f"no user {email}: create one with `pipeline users create {email}`")
        _set_password(user, password)
        db.session.commit()
        click.echo(f"console password set for {email}")


@click.group()
def tokens():
    """Manage API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default=None, help="A label for the token.")
def tokens_create(email, name):
    """Create an API token for EMAIL and print it (it is shown only this once)."""
    from control.extensions import db
    from control.models import ApiToken, User
    with _app().app_context():
        user = db.session.query(User).filter_by(email=email).first()
        if user is None:
            raise click.ClickException(f"no user {email}: create one with `pipeline users create {email}`")
        row, plain = ApiToken.issue(user, name)
        db.session.add(row)
        db.session.commit()
        click.echo(plain)


@click.group()
def db():
    """Database commands."""


@db.command("upgrade")
def db_upgrade():
    """Apply the migrations in migrations/ to DATABASE_URL."""
    from flask_migrate import upgrade
    app = _app()
    with app.app_context():
        upgrade()
    click.echo(f"database at {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]} is up to date")


@click.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Web server port.")
@click.option("--endpoint-port", default=8090, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Local endpoint worker processes.")
def up(port, endpoint_port, workers):
    """Run the whole system on the embedded default, in the foreground; Ctrl-C stops it all."""
    from control.config import data_dir
    env = dict(os.environ)
    env["BRIGHTRUN_DATA_DIR"] = str(data_dir())
    env.setdefault("STORAGE_BACKEND", "local")
    env.setdefault("STORAGE_LOCAL_ROOT", str(data_dir() / "storage"))
    env.setdefault("RUNPOD_ENDPOINT_BASE_URL", f"http://127.0.0.1:{endpoint_port}/v2")
    env.setdefault("RUNPOD_ENDPOINT_ID", "local")
    env.setdefault("RUNPOD_API_KEY", "local")
    env.setdefault("MONITOR_INTERVAL_SECONDS", "2")
    if not env.get("REDIS_URL"):
        from control.services.queue import embedded_redis_url
        env["REDIS_URL"] = embedded_redis_url(data_dir())
        click.echo(f"embedded Redis at {env['REDIS_URL']}")
    os.environ.update(env)
    run = [sys.executable, "-m", "control.cli"]
    subprocess.run(run + ["db", "upgrade"], env=env, check=True)
    children = [
        subprocess.Popen(run + ["endpoint", "--port", str(endpoint_port), "--workers", str(workers)], env=env),
        subprocess.Popen(run + ["worker"], env=env),
        subprocess.Popen(run + ["serve", "--port", str(port)], env=env),
    ]
    click.echo(f"BrightRun is up: console http://127.0.0.1:{port}/  ·  API http://127.0.0.1:{port}/api  ·  "
               f"local endpoint {env['RUNPOD_ENDPOINT_BASE_URL']} ({workers} worker(s))  ·  data in {data_dir()}\n"
               "Create a user who can sign in: pipeline users create you@example.com --password; "
               "an API token: pipeline tokens create you@example.com.  Ctrl-C stops everything.")
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                click.secho(f"a part stopped (exit {dead[0].returncode}): {' '.join(dead[0].args[3:])}; "
                            "stopping everything", fg="red", err=True)
                break
            time.sleep(0.5)
    finally:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for c in children:
            try:
                c.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.kill()
        click.echo("stopped")


def register(main: click.Group) -> None:
    for command in (up, serve, worker, users, tokens, db):
        main.add_command(command)
    try:
        from control.local_endpoint.cli import endpoint
    except ImportError:   # the local endpoint's extras are missing
        return
    main.add_command(endpoint)
