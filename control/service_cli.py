"""The service commands of ``pipeline``: run the system, and administer it.

    pipeline up [--port P] [--workers N]       everything, in the foreground (Ctrl-C stops it)
    pipeline serve [--port P]                  the web server (console at /, API at /api)
    pipeline worker                            an RQ worker (with the scheduler)
    pipeline endpoint [--port P] [--workers N] the local RunPod-compatible endpoint
    pipeline users create EMAIL [--role R] [--password]
    pipeline users set-role EMAIL admin|engineer|reviewer
    pipeline users set-password EMAIL          a console password (asked twice, never echoed)
    pipeline users deactivate|reactivate EMAIL no session or token of theirs works meanwhile
    pipeline tokens create EMAIL [--name N] [--expires-in 30d]   prints the token once
    pipeline tokens list EMAIL                 prefix, name, created, last used, expiry, status
    pipeline tokens revoke TOKEN_ID            refused from now on
    pipeline db upgrade                        apply the migrations
    pipeline base-models list|add ORG/NAME [--description D]|remove ORG/NAME

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

    from control.request_limits import server_body_limit
    app = _app()
    click.echo(f"serving on http://{host}:{port}")
    # Above the app's own limit, so the app answers a body over it (JSON 413 naming the limit).
    waitress_serve(app, host=host, port=port, threads=threads,
                   max_request_body_size=server_body_limit(app.config))


@click.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--queues", type=click.Choice(["all", "jobs", "notify"]), default="all", show_default=True,
              help="jobs: dispatch, monitor and the rest; notify: Slack, email and webhooks; all: both, "
                   "jobs first. In production run one of each, so a slow receiver never holds up a job.")
def worker(burst, queues):
    """Run an RQ worker for the dispatch and monitor tasks; it also sweeps for lost ones."""
    import control.tasks  # noqa: F401 - imported once here: each forked work horse inherits it
    from control.worker import work_forever      # instead of importing it again (~3 s: openai, scipy)
    app = _app()
    with app.app_context():
        work_forever(burst=burst, queues=queues)


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
@click.option("--role", type=click.Choice(["admin", "engineer", "reviewer"]), default="engineer", show_default=True,
              help="reviewer: an engineer who also scores answers blind and approves models for delivery")
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
    """Set (or change) EMAIL's console password: signs out all their sessions and lifts the
    sign-in wait on their email."""
    from control.services import accounts
    with _app().app_context():
        user = _user(email)
        try:
            ended = accounts.set_password(user, password)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="password") from None
        click.echo(f"console password set for {email}; {ended} session(s) signed out, "
                   "failed sign-ins forgotten")


def _user(email):
    """The user with this email (any case), or a clear error."""
    from control.services import accounts
    user = accounts.by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email}: create one with `pipeline users create {email}`")
    return user


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email):
    """End EMAIL's sessions now; their API tokens are refused until `users reactivate`."""
    from control.services import accounts
    with _app().app_context():
        user = _user(email)
        ended = accounts.deactivate(user)
        click.echo(f"{email} is deactivated: {ended} session(s) ended, {len(user.tokens)} token(s) refused "
                   "(revoke them for good with `pipeline tokens revoke TOKEN_ID`)")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "engineer", "reviewer"]))
def users_set_role(email, role):
    """Give EMAIL another role (reviewer: blind review and delivery decisions)."""
    from control.extensions import db
    with _app().app_context():
        user = _user(email)
        before, user.role = user.role, role
        db.session.commit()
        click.echo(f"{email}: {before} -> {role}")


@users.command("reactivate")
@click.argument("email")
def users_reactivate(email):
    """Let EMAIL sign in again; their unrevoked, unexpired tokens work again."""
    from control.services import accounts
    with _app().app_context():
        accounts.reactivate(_user(email))
        click.echo(f"{email} is active again")


@click.group()
def tokens():
    """Manage API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default=None, help="A label for the token.")
@click.option("--expires-in", default=None, metavar="DURATION",
              help="Lifetime: 12h, 30d, 2w (default: until revoked).")
def tokens_create(email, name, expires_in):
    """Create an API token for EMAIL and print it (it is shown only this once)."""
    from control.services import tokens as token_rules
    lifetime = None
    if expires_in is not None:
        try:
            lifetime = token_rules.parse_expires_in(expires_in)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires-in") from None
    with _app().app_context():
        row, plain = token_rules.create(_user(email), name, lifetime)
        click.echo(plain)
        if row.expires_at is not None:
            click.echo(f"{row.id} expires {row.expires_at.isoformat(timespec='seconds')}", err=True)


@tokens.command("list")
@click.argument("email")
def tokens_list(email):
    """EMAIL's tokens: id, prefix, name, created, last used, expiry, status (never the token)."""
    from control.services import tokens as token_rules
    with _app().app_context():
        rows = token_rules.owned_by(_user(email))
        if not rows:
            click.echo(f"{email} has no API tokens")
        for row in rows:
            d = row.to_dict()
            click.echo("  ".join([row.id, f"{row.display_prefix}…", repr(row.name or ""),
                                  f"created {d['created_at']}", f"last used {d['last_used_at'] or 'never'}",
                                  f"expires {d['expires_at'] or 'never'}", token_rules.status(row)]))


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id):
    """Revoke the token TOKEN_ID (from `tokens list`): it is refused from now on."""
    from control.services import tokens as token_rules
    from control.services.exceptions import NotFound
    with _app().app_context():
        try:
            row = token_rules.revoke(token_id)
        except NotFound:
            raise click.ClickException(f"no API token {token_id}: `pipeline tokens list EMAIL` shows the ids") from None
        click.echo(f"revoked {row.id} ({row.display_prefix}…) of {row.user.email}")


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
        subprocess.Popen(run + ["worker", "--queues", "jobs"], env=env),
        subprocess.Popen(run + ["worker", "--queues", "notify"], env=env),    # Slack, email, webhooks
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


@click.group("base-models")
def base_models_cli():
    """The base models jobs may train on: embedded, BASE_MODELS, and those registered here."""


@base_models_cli.command("list")
def base_models_list():
    """Every allowed base model, where it comes from, and the default."""
    from control.services import base_models
    with _app().app_context():
        default = base_models.current_default()
        for m in base_models.listing():
            note = f"  {m['description']}" if m["description"] else ""
            click.echo(f"{m['name']:<48} {m['source']:<10}{' (default)' if m['name'] == default else ''}{note}")


@base_models_cli.command("add")
@click.argument("name")
@click.option("--description", default=None, help="A note users see beside it.")
def base_models_add(name, description):
    """Allow the Hugging Face model NAME (ORG/NAME) for every job."""
    from control.services import base_models
    from control.services.exceptions import Conflict
    from shared.errors import ConfigError
    with _app().app_context():
        try:
            base_models.register(name, description)
        except ConfigError as exc:
            raise click.BadParameter(exc.problems[0].message, param_hint="NAME") from None
        except Conflict as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"{name} registered: new jobs may train on it")


@base_models_cli.command("remove")
@click.argument("name")
def base_models_remove(name):
    """Withdraw the registered model NAME: new jobs may no longer use it (jobs that did keep it)."""
    from control.services import base_models
    from control.services.exceptions import Conflict, NotFound
    with _app().app_context():
        try:
            base_models.remove(name)
        except (Conflict, NotFound) as exc:
            raise click.ClickException(getattr(exc, "message", str(exc))) from None
        click.echo(f"{name} removed: new jobs may no longer train on it")


def register(main: click.Group) -> None:
    for command in (up, serve, worker, users, tokens, db):
        main.add_command(command)
    main.add_command(base_models_cli)
    try:
        from control.local_endpoint.cli import endpoint
    except ImportError:   # the local endpoint's extras are missing
        return
    main.add_command(endpoint)
