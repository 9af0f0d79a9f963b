"""Credentials that can be withdrawn, and a sign-in throttle an attacker cannot turn against
the victim, tried as an attacker would: from their own address, with a stolen cookie, with a
revoked, expired or someone else's token. On Postgres and SQLite, with the real Redis."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from redis import Redis

from control import service_cli
from control.cli import main
from control.extensions import db
from control.models import ApiToken, ConsoleSession, User, utcnow
from control.services import tokens
from control.services.queue import redis_connection
from control.services.sign_in_throttle import FREE_FAILURES
from tests.test_console import PASSWORD, Console

ATTACKER, VICTIM = "198.51.100.7", "203.0.113.5"


def browser(app, address=VICTIM) -> Console:
    c = Console(app)
    c.client._client.environ_base["REMOTE_ADDR"] = address
    return c


def sign_in(c: Console, email="ana@example.com", password=PASSWORD):
    c.get("/login")
    return c.post("/login", {"email": email, "password": password})


def guess(c: Console, email="ana@example.com", times=FREE_FAILURES + 1):
    c.get("/login")
    for _ in range(times):
        assert c.post("/login", {"email": email, "password": "a-guess-123"}).status_code == 401


def cookie(c: Console) -> str:
    return c.client._client.get_cookie("session").value


def replay(app, value: str, address=ATTACKER) -> Console:
    """A new browser holding a copy of someone's session cookie."""
    thief = browser(app, address)
    thief.client._client.set_cookie("session", value)
    return thief


def cli(app, monkeypatch, *args, **kw):
    """``pipeline ARGS`` on this test's app (its database, Redis and queue name; no new engine)."""
    monkeypatch.setattr(service_cli, "_app", lambda: app)
    result = CliRunner().invoke(main, list(args), **kw)
    db.session.expire_all()
    return result


def ana() -> User:
    return db.session.scalar(db.select(User).where(User.email == "ana@example.com"))


# ---------------------------------------------------------------------------- throttling

def test_a_victim_locked_out_from_one_address_still_signs_in_from_another(app, make_person):
    make_person()
    attacker = browser(app, ATTACKER)
    guess(attacker)
    r = sign_in(attacker)                       # even the right password waits, from there
    text = r.get_data(as_text=True)
    assert r.status_code == 429 and "Too many failed sign-ins" in text and re.search(r"Wait [0-9]+ s", text)
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert sign_in(browser(app, VICTIM)).status_code == 302
    r = sign_in(attacker, password="another-guess")   # refused before the password is looked at
    assert r.status_code == 429 and sign_in(attacker).status_code == 429


def test_each_further_guess_from_that_address_doubles_the_wait(app, make_person):
    make_person()
    attacker = browser(app, ATTACKER)
    guess(attacker, times=FREE_FAILURES)
    assert sign_in(attacker, password="wrong-again").status_code == 401   # the sixth: 30 s
    r = sign_in(attacker, password="wrong-again")
    assert r.status_code == 429 and 20 < int(r.headers["Retry-After"]) <= 30
    redis = redis_connection()
    redis.delete(*redis.keys(f"{app.config['QUEUE_NAME']}:sign-in:lock:*"))   # as if 30 s went by
    assert sign_in(attacker, password="wrong-again").status_code == 401   # the seventh: 60 s
    r = sign_in(attacker)
    assert r.status_code == 429 and 30 < int(r.headers["Retry-After"]) <= 60


def test_an_admin_password_reset_lifts_the_wait_and_ends_the_old_sessions(app, make_person, monkeypatch):
    make_person()
    victim = browser(app, VICTIM)
    assert sign_in(victim).status_code == 302
    guess(browser(app, VICTIM))                 # the victim's own address is locked too
    assert sign_in(browser(app, VICTIM)).status_code == 429
    r = cli(app, monkeypatch, "users", "set-password", "ana@example.com",
            env={"BRIGHTRUN_PASSWORD": "a-new-password-99"})
    assert r.exit_code == 0 and "1 session(s) signed out" in r.output, r.output
    assert victim.get("/jobs").status_code == 302                       # the old session is dead
    assert sign_in(browser(app, VICTIM), password="a-new-password-99").status_code == 302


def test_the_user_changing_their_password_lifts_the_wait_and_keeps_only_their_session(app, make_person):
    make_person()
    here, laptop = browser(app, VICTIM), browser(app, "192.0.2.44")
    assert sign_in(here).status_code == 302 and sign_in(laptop).status_code == 302
    stolen = cookie(laptop)
    attacker = browser(app, ATTACKER)
    guess(attacker)
    here.get("/account")
    r = here.post("/account/password", {"current_password": "not-it", "new_password": "a-new-password-99",
                                        "new_password_again": "a-new-password-99"})
    assert r.status_code == 400 and "current password is wrong" in r.get_data(as_text=True)
    r = here.post("/account/password", {"current_password": PASSWORD, "new_password": "a-new-password-99",
                                        "new_password_again": "a-new-password-99"})
    assert r.status_code == 302
    assert "1 other session signed out" in here.get("/account").get_data(as_text=True)
    assert here.get("/jobs").status_code == 200
    assert laptop.get("/jobs").status_code == 302 and replay(app, stolen).get("/jobs").status_code == 302
    assert sign_in(attacker, password="a-new-password-99").status_code == 302   # the wait is lifted


def test_one_address_guessing_many_emails_hits_the_per_address_ceiling(app, make_person):
    app.config["SIGN_IN_MAX_FAILURES_PER_ADDRESS"] = 6
    make_person()
    attacker = browser(app, ATTACKER)
    for n in range(6):                          # one guess each: no pair ever waits
        guess(attacker, email=f"user{n}@example.com", times=1)
    r = sign_in(attacker)                       # a seventh account, with its right password
    assert r.status_code == 429 and "from your address, for several accounts" in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) > 60
    assert sign_in(attacker, email="user0@example.com").status_code == 429
    assert sign_in(browser(app, VICTIM)).status_code == 302


def test_an_unreachable_redis_never_locks_anyone_out(app, make_person, monkeypatch):
    make_person()
    monkeypatch.setitem(app.extensions, "brightrun.redis", Redis.from_url("redis://127.0.0.1:1/0"))
    attacker = browser(app, ATTACKER)
    guess(attacker, times=FREE_FAILURES + 2)
    assert sign_in(attacker).status_code == 302


# ---------------------------------------------------------------------------- sessions

def test_a_cookie_replayed_after_logout_gets_the_sign_in_page(app, make_person):
    make_person()
    victim = browser(app)
    assert sign_in(victim).status_code == 302
    victim.get("/jobs")
    stolen, form_token = cookie(victim), victim.csrf                    # a page's form token too
    assert replay(app, stolen).get("/jobs").status_code == 200          # it works while signed in
    assert victim.post("/logout").status_code == 302
    for url in ("/jobs", "/files", "/tokens", "/account"):
        r = replay(app, stolen).get(url)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), url
    thief = replay(app, stolen)
    thief.csrf = form_token
    r = thief.post("/tokens", {"name": "backdoor"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert not tokens.owned_by(ana())
    assert db.session.scalar(db.select(ConsoleSession)).revoked_at is not None


def test_a_cookie_from_before_a_password_change_is_dead(app, make_person):
    make_person()
    victim = browser(app)
    assert sign_in(victim).status_code == 302
    stolen = cookie(victim)
    from control.services import accounts
    accounts.set_password(ana(), "a-brand-new-password")
    assert replay(app, stolen).get("/jobs").status_code == 302
    assert victim.get("/jobs").status_code == 302


def test_a_deactivated_users_sessions_and_tokens_stop_working(app, make_person, monkeypatch):
    make_person()
    victim = browser(app)
    assert sign_in(victim).status_code == 302
    _, plain = tokens.create(ana(), "ci")
    headers = {"Authorization": f"Bearer {plain}"}
    app_client = app.test_client()
    assert app_client.get("/api/training/jobs", headers=headers).status_code == 200
    r = cli(app, monkeypatch, "users", "deactivate", "ana@example.com")
    assert r.exit_code == 0 and "1 session(s) ended" in r.output, r.output
    assert victim.get("/jobs").status_code == 302
    r = app_client.get("/api/training/jobs", headers=headers)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "account_deactivated"
    assert "deactivated" in r.get_json()["error"]["message"]
    r = sign_in(browser(app))
    assert r.status_code == 403 and "deactivated" in r.get_data(as_text=True)
    assert cli(app, monkeypatch, "users", "reactivate", "ana@example.com").exit_code == 0
    assert app_client.get("/api/training/jobs", headers=headers).status_code == 200
    assert victim.get("/jobs").status_code == 302                       # the session stays ended


def test_the_cookie_carries_only_a_random_session_token_nothing_of_the_password(app, make_person):
    person = make_person()
    c = browser(app)
    assert sign_in(c).status_code == 302
    raw = cookie(c)
    data = app.session_interface.get_signing_serializer(app).loads(raw)
    assert set(data) <= {"sid", "_permanent", "csrf_token", "_fresh"}, data
    digest = hashlib.sha256(data["sid"].encode()).hexdigest()
    assert db.session.scalar(db.select(ConsoleSession)).token_hash == digest
    secret = person.password_hash.split("$", 1)[1]          # the salt and the hash
    for chunk in {secret[i:i + 8] for i in range(0, len(secret) - 8)}:
        assert chunk not in raw and chunk not in str(data)


def test_an_expired_session_is_no_session_and_last_seen_is_kept_once_a_minute(app, make_person):
    make_person()
    c = browser(app)
    assert sign_in(c).status_code == 302
    row = db.session.scalar(db.select(ConsoleSession))
    row.last_seen_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert c.get("/jobs").status_code == 200
    db.session.expire_all()
    seen = db.session.scalar(db.select(ConsoleSession)).last_seen_at
    assert utcnow() - seen < timedelta(seconds=10)
    c.get("/jobs")
    db.session.expire_all()
    assert db.session.scalar(db.select(ConsoleSession)).last_seen_at == seen
    db.session.scalar(db.select(ConsoleSession)).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert c.get("/jobs").status_code == 302


# ---------------------------------------------------------------------------- API tokens

def test_a_revoked_token_gets_401_at_once(client, auth):
    r = client.post("/api/tokens", headers=auth, json={"name": "deploy bot", "expires_in_days": 30})
    made = r.get_json()
    assert r.status_code == 201 and made["token"].startswith(made["prefix"]) and made["status"] == "active"
    bot = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/training/jobs", headers=bot).status_code == 200
    assert client.delete(f"/api/tokens/{made['id']}", headers=auth).status_code == 204
    r = client.get("/api/training/jobs", headers=bot)
    error = r.get_json()["error"]
    assert r.status_code == 401 and error["code"] == "token_revoked" and "revoked" in error["message"]
    listed = {t["id"]: t for t in client.get("/api/tokens", headers=auth).get_json()["data"]}
    assert listed[made["id"]]["status"] == "revoked" and "token" not in listed[made["id"]]
    assert listed[made["id"]]["name"] == "deploy bot" and listed[made["id"]]["expires_at"]


def test_an_expired_token_gets_401_saying_so(client, app, make_user):
    user_id, headers = make_user()
    row = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == user_id))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    r = client.get("/api/training-files", headers=headers)
    error = r.get_json()["error"]
    assert r.status_code == 401 and error["code"] == "token_expired" and "expired" in error["message"]


def test_a_user_cannot_list_or_revoke_another_users_tokens(app, client, make_user):
    _, ana_auth = make_user("ana@example.com")
    bo_id, bo_auth = make_user("bo@example.com")
    bo_token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == bo_id))
    listed = client.get("/api/tokens", headers=ana_auth).get_json()["data"]
    assert len(listed) == 1 and bo_token.id not in str(listed) and bo_token.display_prefix not in str(listed)
    r = client.delete(f"/api/tokens/{bo_token.id}", headers=ana_auth)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert client.delete("/api/tokens/tok_nope", headers=ana_auth).status_code == 404
    assert client.get("/api/training/jobs", headers=bo_auth).status_code == 200


@pytest.mark.parametrize("body,field", [
    ({"expires_in_days": 0}, "expires_in_days"), ({"expires_in_days": 100000}, "expires_in_days"),
    ({"expires_in_days": "30"}, "expires_in_days"), ({"name": ""}, "name"), ({"name": "a\x00b"}, "name"),
    ({"name": "x" * 201}, "name"), ({"scopes": ["all"]}, "scopes"),
])
def test_a_bad_token_request_is_a_400_naming_the_field(client, auth, body, field):
    r = client.post("/api/tokens", headers=auth, json=body)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == field, r.get_json()


def test_the_console_tokens_page_shows_a_new_token_once_and_revokes_with_csrf(app, make_person, make_user):
    make_person()
    c = browser(app)
    assert sign_in(c).status_code == 302
    c.get("/tokens")
    r = c.post("/tokens", {"name": "laptop", "expires_in_days": "30"})
    page = r.get_data(as_text=True)
    plain = next(t for t in page.split('"') if t.startswith("brt_"))
    assert r.status_code == 201 and "will not be shown again" in page and r.headers["Cache-Control"] == "no-store"
    headers = {"Authorization": f"Bearer {plain}"}
    assert app.test_client().get("/api/training/jobs", headers=headers).status_code == 200
    listing = c.get("/tokens").get_data(as_text=True)
    assert plain not in listing and plain[:10] in listing and "laptop" in listing
    assert c.post("/tokens", {"expires_in_days": "forever"}).status_code == 400
    row = tokens.owned_by(ana())[0]
    assert c.post("/tokens/revoke", {"token_id": row.id}, csrf=False).status_code == 400
    assert app.test_client().get("/api/training/jobs", headers=headers).status_code == 200
    bo_id, bo_auth = make_user("bo@example.com")
    bo_token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == bo_id))
    assert c.post("/tokens/revoke", {"token_id": bo_token.id}).status_code == 404
    assert c.post("/tokens/revoke", {"token_id": row.id}).status_code == 302
    assert app.test_client().get("/api/training/jobs", headers=headers).status_code == 401
    assert app.test_client().get("/api/training/jobs", headers=bo_auth).status_code == 200


def test_the_cli_creates_lists_and_revokes_named_expiring_tokens(app, make_person, monkeypatch):
    make_person()
    r = cli(app, monkeypatch, "tokens", "create", "ana@example.com", "--name", "nightly", "--expires-in", "30d")
    assert r.exit_code == 0, r.output
    plain = r.stdout.strip().splitlines()[0]
    row = tokens.owned_by(ana())[0]
    assert row.name == "nightly" and timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    r = cli(app, monkeypatch, "tokens", "list", "ana@example.com")
    assert row.id in r.output and plain[:10] in r.output and plain not in r.output and "active" in r.output
    assert cli(app, monkeypatch, "tokens", "create", "ana@example.com", "--expires-in", "soon").exit_code == 2
    assert cli(app, monkeypatch, "tokens", "revoke", "tok_nope").exit_code == 1
    assert cli(app, monkeypatch, "tokens", "revoke", row.id).exit_code == 0
    r = app.test_client().get("/api/training/jobs", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_revoked"
    assert "revoked" in cli(app, monkeypatch, "tokens", "list", "ana@example.com").output


def test_a_token_made_with_an_expiring_token_does_not_outlive_it(client, app, make_user):
    user_id, headers = make_user()
    row = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == user_id))
    row.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    caller_expiry = row.expires_at
    for body in ({"name": "forever"}, {"name": "a year", "expires_in_days": 365}):
        made = client.post("/api/tokens", headers=headers, json=body).get_json()
        minted = db.session.get(ApiToken, made["id"])
        assert minted.expires_at is not None and minted.expires_at <= caller_expiry
    made = client.post("/api/tokens", headers=headers, json={"name": "an hour", "expires_in_days": 1}).get_json()
    assert db.session.get(ApiToken, made["id"]).expires_at <= caller_expiry    # the shorter one wins
