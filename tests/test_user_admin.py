"""User admin in the console and ``/api/users``, on Postgres and SQLite: an admin creates a
user, whose one-time link sets a password that signs in (once; expired and replaced links
refused, saying which); roles change, an admin cannot demote or deactivate themself and
the last admin stays; a deactivated user's live console session and API token stop at their
next request, through the real HTTP client, and their jobs stay theirs; the team view's
numbers. Every change is on the audit trail."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from control.extensions import db
from control.models import ApiToken, PasswordLink, TrainingJob, User, new_id, utcnow
from control.services import audit, user_admin
from control.services.exceptions import Conflict
from tests.test_console import PASSWORD, Console, _FreshContextClient
from tests.test_console_evaluation import _job
from tests.finished_runs import training_file

NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture
def admin(app, make_person):
    make_person("boss@example.com", "admin")
    return Console(app).login("boss@example.com")


def _text(r) -> str:
    return r.get_data(as_text=True)


def _link_of(html: str) -> str:
    """The set-password link the page shows once, as a path."""
    found = re.search(r'value="https?://[^/"]+(/set-password/[^"]+)" id="password-link"', html)
    assert found, html
    return found.group(1)


def _set_password(app, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    visitor = Console(app)
    page = visitor.get(path)
    if page.status_code != 200:
        return page
    return visitor.post(path, {"password": password, "confirm": password if confirm is None else confirm})


def _signs_in(app, email: str, password: str) -> bool:
    visitor = Console(app)
    visitor.get("/login")
    return visitor.post("/login", {"email": email, "password": password}).status_code == 302


# ---------------------------------------------------------------------- create, link, password
def test_a_new_user_sets_a_password_with_their_link_once_and_signs_in(app, admin):
    r = admin.post("/users", {"email": " Nia@Example.com ", "role": "reviewer"})
    assert r.status_code == 201, _text(r)
    assert r.headers["Cache-Control"] == "no-store"
    assert "it will not be shown again" in _text(r)
    path = _link_of(_text(r))
    user = db.session.query(User).filter_by(email="nia@example.com").one()
    assert user.role == "reviewer" and user.password_hash is None
    [link] = db.session.query(PasswordLink).filter_by(user_id=user.id).all()
    token = path.rsplit("/", 1)[1]
    assert token not in link.token_hash and len(link.token_hash) == 64         # only its sha256 is kept
    assert timedelta(hours=71) < link.expires_at - utcnow() <= timedelta(hours=72)
    assert "invited" in _text(admin.get("/users"))

    page = Console(app).get(path)                           # no sign-in needed
    assert page.status_code == 200 and "nia@example.com" in _text(page)
    assert _set_password(app, path, "short", "short").status_code == 400     # too short: the link still works
    assert _set_password(app, path, NEW_PASSWORD, NEW_PASSWORD + "x").status_code == 400
    r = _set_password(app, path)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert _signs_in(app, "nia@example.com", NEW_PASSWORD)
    again = _set_password(app, path, "another-password-1")
    assert again.status_code == 410 and "used already" in _text(again)
    assert not _signs_in(app, "nia@example.com", "another-password-1")
    assert Console(app).get("/set-password/not-a-token").status_code == 404

    trail = [(e.action, e.actor_email, e.target_id) for e in audit.entries(action="user.")]
    assert trail == [("user.password_set", "nia@example.com", user.id),
                     ("user.password_link_created", "boss@example.com", user.id),
                     ("user.created", "boss@example.com", user.id)]
    assert "active" in _text(admin.get("/users"))


def test_an_expired_or_replaced_link_is_refused_saying_which(app, admin):
    path = _link_of(_text(admin.post("/users", {"email": "omar@example.com", "role": "engineer"})))
    user = db.session.query(User).filter_by(email="omar@example.com").one()
    r = admin.post(f"/users/{user.id}/password-link")
    assert r.status_code == 201
    newer = _link_of(_text(r))
    replaced = _set_password(app, path)
    assert replaced.status_code == 410 and "replaced by a newer one" in _text(replaced)
    link = db.session.query(PasswordLink).filter_by(user_id=user.id, revoked_at=None).one()
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    expired = _set_password(app, newer)
    assert expired.status_code == 410 and "expired" in _text(expired)
    assert db.session.get(User, user.id).password_hash is None


def test_creating_a_user_is_refused_clearly(app, admin, make_person):
    for form, words in (({"email": "not-an-email", "role": "engineer"}, "is not an email address"),
                        ({"email": "x@example.com", "role": "overlord"}, "Role"),
                        ({"email": "boss@example.com", "role": "engineer"}, "already exists")):
        r = admin.post("/users", form)
        assert r.status_code in (400, 409) and words in _text(r), (form, _text(r))
    assert db.session.query(User).count() == 1 and not audit.entries(action="user.")
    make_person("eve@example.com", "engineer")
    engineer = Console(app).login("eve@example.com")
    assert engineer.get("/users").status_code == 403
    assert engineer.post("/users", {"email": "z@example.com", "role": "admin"}).status_code == 403
    assert 'href="/users"' not in _text(engineer.get("/jobs")) and 'href="/team"' in _text(engineer.get("/jobs"))


# ---------------------------------------------------------------------- roles
def test_roles_change_but_an_admin_keeps_their_own_and_the_last_admin_stays(app, admin, make_person):
    other = make_person("kim@example.com", "engineer")
    me = db.session.query(User).filter_by(email="boss@example.com").one()
    admin.get("/users")
    r = admin.post(f"/users/{other.id}/role", {"role": "admin"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, other.id).role == "admin"
    refused = admin.post(f"/users/{me.id}/role", {"role": "engineer"})
    assert refused.status_code == 409 and "cannot demote yourself" in _text(refused)
    refused = admin.post(f"/users/{me.id}/deactivate")
    assert refused.status_code == 409 and "cannot deactivate yourself" in _text(refused)
    assert admin.post(f"/users/{other.id}/role", {"role": "chief"}).status_code == 400
    assert admin.post(f"/users/{other.id}/role", {"role": "reviewer"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, other.id).role == "reviewer" and db.session.get(User, me.id).role == "admin"
    trail = [(e.details["from"], e.details["to"]) for e in audit.entries(action="user.role_changed")]
    assert trail == [("admin", "reviewer"), ("engineer", "admin")]
    # Two admins demoting each other at once: the one whose request lands second finds
    # itself about to remove the last admin, and is refused.
    kim = db.session.get(User, other.id)
    kim.role = "admin"
    db.session.commit()
    user_admin.change_role(me, kim, "engineer")
    with pytest.raises(Conflict, match="last active admin"):
        user_admin._keeps_an_admin(kim, me, "demote")
    db.session.rollback()


# ---------------------------------------------------------------------- deactivation
def test_a_deactivated_users_session_and_token_stop_at_their_next_request(app, admin, make_person, small_sample):
    person = make_person("dev@example.com", "engineer")
    row, plain = ApiToken.issue(person, "laptop")
    db.session.add(row)
    db.session.commit()
    job = _job(person, small_sample, completed=True, name="dev run")
    api = _FreshContextClient(app.test_client(), app)
    bearer = {"Authorization": f"Bearer {plain}"}
    dev = Console(app).login("dev@example.com")
    assert dev.get(f"/jobs/{job.id}").status_code == 200
    assert api.get("/api/training/jobs", headers=bearer).status_code == 200

    admin.get("/users")
    r = admin.post(f"/users/{person.id}/deactivate")
    assert r.status_code == 302
    assert "1 console session ended" in _text(admin.get("/users"))

    # The very next request of each is refused.
    page = dev.get(f"/jobs/{job.id}")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    r = api.get("/api/training/jobs", headers=bearer)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "account_deactivated"
    assert not _signs_in(app, "dev@example.com", PASSWORD)
    # Their jobs stay theirs.
    db.session.expire_all()
    assert db.session.get(TrainingJob, job.id).created_by == person.id
    listed = _text(admin.get("/jobs"))
    assert "dev run" in listed and "dev@example.com" in listed
    assert "deactivated" in _text(admin.get("/users"))

    assert admin.post(f"/users/{person.id}/reactivate").status_code == 302
    assert api.get("/api/training/jobs", headers=bearer).status_code == 200      # the token works again
    assert dev.get(f"/jobs/{job.id}").status_code == 302                      # the session stays ended
    assert _signs_in(app, "dev@example.com", PASSWORD)
    trail = [e.action for e in audit.entries(action="user.")]
    assert trail == ["user.reactivated", "user.deactivated"]


def test_a_deactivated_users_set_password_link_stops_too(app, admin):
    path = _link_of(_text(admin.post("/users", {"email": "ivy@example.com", "role": "engineer"})))
    ivy = db.session.query(User).filter_by(email="ivy@example.com").one()
    assert admin.post(f"/users/{ivy.id}/deactivate").status_code == 302
    assert _set_password(app, path).status_code == 410
    assert admin.post(f"/users/{ivy.id}/password-link").status_code == 409


# ---------------------------------------------------------------------- the API
def test_the_users_api_is_for_admins(app, client, make_user):
    admin_id, boss = make_user("boss@example.com", "admin")
    _, eve = make_user("eve@example.com", "engineer")
    r = client.post("/api/users", headers=boss, json={"email": "New@Example.com", "role": "engineer"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["user"]["email"] == "new@example.com" and body["user"]["status"] == "invited"
    assert "/set-password/" in body["set_password_url"]
    new_id = body["user"]["id"]
    assert client.post("/api/users", headers=boss, json={"email": "new@example.com"}).status_code == 409
    r = client.post("/api/users", headers=boss, json={"email": "x@example.com", "role": "root"})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "role"
    listed = client.get("/api/users", headers=boss).get_json()["data"]
    assert {u["email"]: u["role"] for u in listed} == {"boss@example.com": "admin", "eve@example.com": "engineer",
                                                        "new@example.com": "engineer"}
    r = client.patch(f"/api/users/{new_id}", headers=boss, json={"role": "reviewer"})
    assert r.status_code == 200 and r.get_json()["role"] == "reviewer"
    r = client.patch(f"/api/users/{new_id}", headers=boss, json={"active": False})
    assert r.status_code == 200 and r.get_json()["status"] == "deactivated"
    r = client.patch(f"/api/users/{admin_id}", headers=boss, json={"active": False})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "own_account"
    assert client.patch(f"/api/users/{new_id}", headers=boss, json={}).status_code == 400
    assert client.patch("/api/users/usr_nobody", headers=boss, json={"role": "admin"}).status_code == 404
    for call in (lambda: client.get("/api/users", headers=eve),
                 lambda: client.post("/api/users", headers=eve, json={"email": "y@example.com"}),
                 lambda: client.patch(f"/api/users/{new_id}", headers=eve, json={"role": "admin"}),
                 lambda: client.post(f"/api/users/{new_id}/password-link", headers=eve)):
        assert call().status_code == 403
    assert [e.action for e in audit.entries(action="user.")] == [
        "user.deactivated", "user.role_changed", "user.password_link_created", "user.created"]


# ---------------------------------------------------------------------- the team view
def _seed_job(owner: User, status: str, cost: float, created_at) -> None:
    db.session.add(TrainingJob(id=new_id("tj"), training_file_id=training_file(owner, f"{new_id('f')}.json").id,
                               name=f"{status} run", preset="balanced",
                               base_model="embedded", method="lora", gpu_type="LOCAL_CPU", gpu_pricing_tier="spot",
                               configuration={}, storage_prefix=f"jobs/{status}", status=status,
                               created_by=owner.id, actual_cost=cost, created_at=created_at))


def test_the_team_view_counts_this_months_jobs_success_and_spend(app, make_person):
    boss = make_person("boss@example.com", "admin")
    ana = make_person("ana@example.com", "engineer")
    make_person("idle@example.com", "engineer")
    now = utcnow()
    for status, cost in (("completed", 2.5), ("completed", 1.25), ("failed", 0.75), ("cancelled", 0.5),
                         ("training", 0.1)):
        _seed_job(ana, status, cost, now - timedelta(minutes=5))
    _seed_job(boss, "completed", 4.0, now - timedelta(minutes=5))
    _seed_job(ana, "completed", 99.0, now.replace(day=1) - timedelta(days=3))     # last month: not counted
    db.session.commit()

    page = _text(Console(app).login("boss@example.com").get("/team"))
    row = re.search(r'<tr data-user-id="[^"]+" data-email="ana@example.com">(.*?)</tr>', page, re.S).group(1)
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells == ["ana@example.com", "engineer", "5", "1", "2", "1", "50% (2/4)", "$5.10"]
    idle = re.search(r'data-email="idle@example.com">(.*?)</tr>', page, re.S).group(1)
    assert ">0<" in idle and "—" in idle
    assert re.search(r'data-figure="spent">\$9\.10<', page) and re.search(r'data-figure="jobs">6<', page)
    assert re.search(r'data-figure="success">60%<', page)          # the team: 3 of 5 finished completed

    # An engineer sees everyone's jobs and success, and only their own spend.
    mine = _text(Console(app).login("ana@example.com").get("/team"))
    assert "$5.10" in mine and "$4.00" not in mine
    assert "boss@example.com admin 1 0 1 0 100% (1/1) —" in " ".join(re.sub(r"<[^>]+>", " ", mine).split())
    assert re.search(r'data-figure="spent">\$9\.10<', mine)
