"""Notifications on Postgres and SQLite, with Slack and SendGrid faked at the network edge
only: the real ``slack-sdk`` and ``sendgrid`` clients post to local stand-ins
(tests/message_stand_ins.py). Each notice kind, emitted as the product emits it, fans out
and is delivered; what the stand-ins received is checked. Slack failing for a while (500,
then 429 with ``Retry-After``) still gets the message exactly once, after the job had
completed at once; a 4xx is final; secrets never reach an error or a log; without
providers the messages are kept; preferences (API and console), the outbox, the digest.

The notify queue's tasks run in this process as a worker would run them; a retry scheduled
for later runs once the delivery's clock has been moved on to its time (no sleeping)."""
from __future__ import annotations

import html
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from control.extensions import db
from control.models import (DEFAULT_EVENTS, NOTICE_KINDS, USER_EVENTS, ApiToken, JobAttempt, Notice, NotificationPreference,
                            OutboxMessage, TrainingJob, User, utcnow)
from control.responses.notifications import NotificationSettingsOut, OutboxPage
from control.services import digests, lifecycle, notices, queue
from control.services.ingest import ingest
from control.services.notifications import delivery
from shared.events import EventStream
from tests.job_events import events_of
from tests.message_stand_ins import WEBHOOK_PATH, Answer, SendGridStandIn, SlackStandIn
from tests.test_console import Console

BASE = "https://brightrun.example"
ADMIN = "boss@example.com"
OOM = {"type": "out_of_memory", "user_error": True, "message": "CUDA out of memory at step 3",
       "cause": "a batch of 4 × 2048 tokens does not fit in the GPU's memory",
       "fix": "reduce batch_size to 2 (the retry applies it)", "adjustment": {"batch_size": 2}}


# ---------------------------------------------------------------------- the edge and the clock
@pytest.fixture(scope="module")
def slack():
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def sendgrid():
    with SendGridStandIn() as server:
        yield server


@pytest.fixture
def wired(app, slack, sendgrid):
    """The app with Slack (webhook and bot) and SendGrid configured, pointed at the stand-ins."""
    slack.reset()
    sendgrid.reset()
    app.config.update(SLACK_WEBHOOK_URL=slack.webhook_url, SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url,
                      SLACK_CHANNEL="#training", SENDGRID_API_KEY=sendgrid.api_key, SENDGRID_API_HOST=sendgrid.url,
                      EMAIL_FROM="brightrun@example.com", PUBLIC_BASE_URL=BASE, NOTIFY_BACKOFF_SECONDS=2,
                      NOTIFY_MAX_ATTEMPTS=8, NOTIFY_TIMEOUT_SECONDS=5)
    return app


class Clock:
    """The delivery's clock: real time, moved on by ``offset``."""

    def __init__(self):
        self.offset = timedelta(0)

    def now(self):
        return utcnow() + self.offset


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(delivery, "now", c.now)
    return c


def drain(clock: Clock) -> list[float]:
    """Run the notify queue's tasks, as a worker would, until none is left; a retry scheduled
    for later runs after the clock is moved on to its message's next try. Returns those
    waits, in seconds."""
    q = queue.notify_queue()
    scheduled = q.scheduled_job_registry
    waits = []
    for _ in range(200):
        ready = [j for j in q.get_jobs() if j is not None]
        for task in ready:
            q.remove(task)
            task.perform()
        if ready:
            continue
        ids = scheduled.get_job_ids()
        if not ids:
            return waits
        task = q.fetch_job(ids[0])
        message = db.session.get(OutboxMessage, task.args[0], populate_existing=True)
        wait = (message.next_attempt_at - clock.now()).total_seconds()
        waits.append(wait)
        clock.offset += timedelta(seconds=max(0.0, wait) + 0.01)
        scheduled.remove(task)
        q.enqueue_job(task)
    raise AssertionError("the notify queue never emptied")


def outbox() -> list[OutboxMessage]:
    return db.session.query(OutboxMessage).order_by(OutboxMessage.id).all()


def blocks_text(message: dict) -> str:
    return json.dumps(message.get("blocks"), ensure_ascii=False)


def button_urls(message: dict) -> list[str]:
    return [e["url"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


# ---------------------------------------------------------------------- each kind, as the product emits it
def _completed_events(job, attempt=1, start=0):
    s = EventStream(job.id, attempt, start_seq=start)
    return [s.make("stage", stage="training"),
            s.make("metrics", step=1, total_steps=1, epoch=1.0, loss=1.5, lr=1e-4),
            s.make("completed", summary={"steps": 1})]


def emit_completed(job):
    ingest(job, job.current_attempt, _completed_events(job))


def emit_failed(job):
    s = EventStream(job.id, 1)
    ingest(job, job.current_attempt, [s.make("stage", stage="training"), s.make("error", error=OOM)])


def emit_cancelled(job):
    lifecycle.mark_cancelled(job)


def emit_stalled(job):
    ingest(job, job.current_attempt, events_of(job.id, steps=2))
    lifecycle.mark_stalled(job, 700.0, 600.0)


def emit_recovered(job):
    ingest(job, job.current_attempt, events_of(job.id, steps=2))
    second = JobAttempt(job=job, number=2, runpod_job_id="rp-2", runpod_status="IN_PROGRESS")
    job.checkpoint_recovery_count = 1
    db.session.add(second)
    db.session.commit()
    s = EventStream(job.id, 2)
    ingest(job, second, [s.make("stage", stage="training", resumed_from_step=2)])


def emit_evaluation(job):
    s = EventStream(job.id, 1)
    ingest(job, job.current_attempt, [s.make("evaluation", conversations=3, targets=7, tokens=638,
                                             base={"loss": 3.455, "perplexity": 31.66},
                                             trained={"loss": 3.063, "perplexity": 21.39}, improvement_pct=32.5,
                                             measures=[{"id": "forgetting", "improvement": 98.0}])])


def _job_notice(kind, **extra):
    def emit(job):
        notices.job_event(kind, job, **extra)
        db.session.commit()
    return emit


def emit_budget(job):
    notices.emit("budget.threshold", payload={"percent": 95, "limit_usd": 500.0, "spent_usd": 476.2,
                                              "month": "2026-12", "recipients": [ADMIN], "channels": ["email", "slack"]},
                 dedupe_key="budget.threshold:2026-12:95")
    db.session.commit()


def emit_digest(job):
    now = utcnow().replace(hour=23, minute=0)
    job.status, job.started_at, job.completed_at = "completed", now - timedelta(hours=2), now - timedelta(hours=1)
    db.session.commit()
    digests.schedule(now)


EMITTERS = {
    "job.completed": emit_completed, "job.failed": emit_failed, "job.cancelled": emit_cancelled,
    "job.stalled": emit_stalled, "job.recovered": emit_recovered, "evaluation.ready": emit_evaluation,
    # As approvals.py, spend.py and delivery_decisions.py emit them:
    "job.awaiting_approval": _job_notice("job.awaiting_approval", recipients=[ADMIN], approval_threshold_usd=150.0),
    "job.approval_decided": _job_notice("job.approval_decided", decision="approved", decided_by=ADMIN,
                                        reason="the client signed off the spend"),
    "job.cost_alert": _job_notice("job.cost_alert", dedupe_key="c80", percent=80, projected_cost_usd=0.61,
                                  message="the job has cost $0.40, 80% of its estimate"),
    "job.over_estimate": _job_notice("job.over_estimate", dedupe_key="oe", projected_usd=0.9, projected_cost_usd=0.9,
                                     message="the job is heading for $0.90"),
    "delivery.approved": _job_notice("delivery.approved", decided_by="rita@example.com", reason="targets met"),
    "delivery.rejected": _job_notice("delivery.rejected", decided_by="rita@example.com",
                                     reason="brand voice under 4.25"),
    "budget.threshold": emit_budget, "digest": emit_digest,
}
TEAM_KINDS = {"job.completed", "job.failed", "job.awaiting_approval", "budget.threshold"}


def test_every_kind_has_an_emitter_here():
    assert set(EMITTERS) == set(NOTICE_KINDS)


@pytest.mark.parametrize("kind", NOTICE_KINDS)
def test_each_kind_reaches_email_slack_and_the_team_as_the_product_emits_it(kind, wired, slack, sendgrid, job,
                                                                            make_user, clock):
    make_user(ADMIN, "admin")
    owner = db.session.get(User, job.created_by)
    db.session.add(NotificationPreference(user_id=owner.id, events=list(USER_EVENTS), channels=["email", "slack"],
                                          slack_channel="#ana-jobs", digest=True))
    db.session.commit()
    job_id, name, owner_email = job.id, job.name, owner.email

    EMITTERS[kind](db.session.get(TrainingJob, job_id))
    drain(clock)

    rows = outbox()
    assert rows and {r.status for r in rows} == {"sent"}, [(r.destination, r.status, r.last_error) for r in rows]
    emails = {e["to"]: e for e in sendgrid.emails()}
    bot = slack.bot_messages()
    team = slack.webhook_messages()
    if kind == "budget.threshold":          # the budget's recipients, whatever they chose; and the team
        assert set(emails) == {ADMIN} and bot == [] and len(team) == 1
        said = emails[ADMIN]["text"] + emails[ADMIN]["html"] + blocks_text(team[0])
        assert "$500.00" in said and "$476.20" in said and "95%" in said
        assert f"{BASE}/budget" in button_urls(team[0])
        return
    expected_emails = {owner_email, ADMIN} if kind == "job.awaiting_approval" else {owner_email}
    assert set(emails) == expected_emails
    assert [m["channel"] for m in bot] == ["#ana-jobs"]
    assert len(team) == (1 if kind in TEAM_KINDS else 0)
    mail, post = emails[owner_email], bot[0]
    mail["html"] = html.unescape(mail["html"])
    assert mail["from"] == "brightrun@example.com"
    assert post["blocks"][0]["type"] == "header" and mail["subject"] in post["blocks"][0]["text"]["text"]
    job_url = f"{BASE}/jobs/{job_id}"
    assert job_url in mail["html"] and job_url in mail["text"]
    if kind == "digest":
        assert "digest" in mail["subject"] and "1 finished, 0 failed, 0 running" in mail["subject"]
        assert name in mail["text"] and f"<{job_url}|{name}>" in blocks_text(post)
        return
    assert job_url in button_urls(post)
    assert name in mail["subject"]
    assert f"Cost: $" in mail["text"] and "estimate" in mail["text"] and "Interruptions:" in mail["text"]
    if kind == "job.failed":
        for said in (mail["text"], mail["html"], blocks_text(post), blocks_text(team[0])):
            assert OOM["cause"] in said and "reduce batch_size to 2" in said
    if kind in ("job.completed", "evaluation.ready"):
        assert f"{BASE}/api/training/jobs/{job_id}/download/validation-report" in button_urls(post)
    if kind == "evaluation.ready":
        assert "32.5% better" in mail["text"] and "98.0%" in mail["text"]
    if kind == "job.recovered":
        assert "from step 2" in mail["text"] and "Interrupted 1x, resumed successfully" in mail["text"]
    if kind == "job.cost_alert":
        assert "80%" in mail["subject"]
    if kind in ("delivery.rejected", "job.approval_decided"):
        assert ("brand voice under 4.25" if kind == "delivery.rejected" else "signed off") in mail["text"]


# ---------------------------------------------------------------------- faults
def test_slack_failing_for_a_while_gets_the_message_exactly_once_and_the_job_was_not_delayed(wired, slack, job,
                                                                                             clock):
    slack.plan(Answer(500, body="internal_error"), Answer(503, body="service_unavailable"),
               Answer(429, {"Retry-After": "7"}, "rate_limited"), Answer(429, {"Retry-After": "30"}, "rate_limited"))
    job_id = job.id

    ingest(job, job.current_attempt, [*events_of(job.id, steps=3),
                                      *_completed_events(job, start=5)[2:]])

    # The job completed in that call, before any message was tried: only the fan-out waits,
    # on the notify queue, never on the jobs' queue.
    assert db.session.get(TrainingJob, job_id).status == "completed"
    assert slack.requests == []
    assert [t.func_name for t in queue.notify_queue().get_jobs()] == [queue.FAN_OUT]
    assert not [t for t in queue.get_queue().get_jobs() if t.func_name in (queue.FAN_OUT, queue.DELIVER_MESSAGE)]

    waits = drain(clock)

    tries = [r for r in slack.requests if r.path == WEBHOOK_PATH]
    assert [r.status for r in tries] == [500, 503, 429, 429, 200]
    assert len(slack.webhook_messages()) == 1
    assert waits == pytest.approx([2, 4, 7, 30], abs=0.5)     # backoff doubling, then Slack's Retry-After
    row = next(r for r in outbox() if r.destination == "team-webhook")
    assert (row.status, row.attempts, row.last_error) == ("sent", 5, None)
    assert row.sent_at is not None


def test_a_second_task_for_a_message_sends_nothing(wired, slack, job, clock):
    emit_completed(job)
    drain(clock)
    row = next(r for r in outbox() if r.destination == "team-webhook")
    for _ in range(2):                                  # the sweep's re-enqueue, a duplicate enqueue
        queue.enqueue_notify(queue.DELIVER_MESSAGE, row.id)
    drain(clock)
    assert len(slack.webhook_messages()) == 1

    # A message being sent (claimed) is not taken by another task meanwhile.
    pending = OutboxMessage(notice_id=row.notice_id, channel="slack", destination="#other", subject="s",
                            body={"text": "t"}, status="pending")
    db.session.add(pending)
    db.session.commit()
    assert delivery.claim(pending.id, clock.now())
    assert delivery.deliver(pending.id) == "pending: not due"
    assert slack.bot_messages() == []


def test_a_refusal_is_final_and_no_secret_reaches_an_error_or_a_log(wired, slack, sendgrid, job, clock, caplog):
    caplog.set_level(logging.DEBUG)
    db.session.add(NotificationPreference(user_id=job.created_by, events=list(DEFAULT_EVENTS),
                                          channels=["email", "slack"], slack_channel="#nowhere"))
    db.session.commit()
    slack.plan(Answer(403, body="invalid_token"), path=WEBHOOK_PATH)                              # final
    slack.plan(Answer(200, body={"ok": False, "error": "channel_not_found"}), path=slack.post_message_path)
    sendgrid.plan(Answer(400, body={"errors": [{"message": "The from address does not match a verified "
                                                           "Sender Identity"}]}))
    emit_failed(job)
    drain(clock)
    rows = {r.destination: r for r in outbox()}
    assert {d: (r.status, r.attempts) for d, r in rows.items()} == {
        "team-webhook": ("dead", 1), "#nowhere": ("dead", 1), "ana@example.com": ("dead", 1)}
    assert "invalid_token" in rows["team-webhook"].last_error
    assert "channel_not_found" in rows["#nowhere"].last_error
    assert "verified Sender Identity" in rows["ana@example.com"].last_error
    told = caplog.text + " ".join(r.last_error for r in rows.values())
    for secret in (WEBHOOK_PATH, slack.token, sendgrid.api_key):
        assert secret not in told


def test_sendgrid_5xx_and_a_lost_connection_are_retried_then_given_up(wired, sendgrid, job, clock):
    wired.config["NOTIFY_MAX_ATTEMPTS"] = 3
    job_id = job.id
    sendgrid.plan(Answer(502, body="bad gateway"), Answer(500, body={"errors": [{"message": "try later"}]}),
                  Answer(503))
    emit_completed(job)
    drain(clock)
    mail = next(r for r in outbox() if r.channel == "email")
    assert (mail.status, mail.attempts) == ("dead", 3)
    assert mail.last_error == "gave up after 3 attempts: SendGrid answered 503"
    assert sendgrid.emails() == []

    wired.config["SENDGRID_API_HOST"] = "http://127.0.0.1:9"          # nothing listens there
    job2 = _another_job(job_id, name="second")
    emit_completed(job2)
    drain(clock)
    mail = [r for r in outbox() if r.channel == "email"][-1]
    assert mail.status == "dead" and "SendGrid unreachable" in mail.last_error and mail.attempts == 3


def test_without_providers_messages_are_kept_and_shown_never_sent(app, slack, sendgrid, job, clock, client, auth):
    slack.reset()
    sendgrid.reset()
    emit_failed(job)
    drain(clock)
    rows = outbox()
    assert {(r.channel, r.destination, r.status) for r in rows} == {
        ("email", "ana@example.com", "kept"), ("slack", "team-webhook", "kept")}
    assert slack.requests == [] and sendgrid.requests == []
    mail = next(r for r in rows if r.channel == "email")
    assert "reduce batch_size to 2" in mail.body["text"] and "<html" in mail.body["html"]
    page = client.get("/api/notifications/outbox", headers=auth).get_json()
    assert [m["status"] for m in page["data"]] == ["kept"]          # the team's message is the admins'
    assert page["data"][0]["subject"].startswith("Job “") and page["total"] == 1


# ---------------------------------------------------------------------- preferences
def test_preferences_have_defaults_change_in_part_and_refuse_unknown_values(client, auth):
    got = client.get("/api/me/notifications", headers=auth).get_json()
    assert got == {"events": list(DEFAULT_EVENTS), "channels": ["email"], "slack_channel": None, "digest": False,
                   "updated_at": None}
    r = client.put("/api/me/notifications", headers=auth,
                   json={"events": ["job.failed", "job.completed", "job.failed"], "channels": ["slack", "email"],
                         "slack_channel": "#ana", "digest": True})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["events"], body["channels"], body["slack_channel"], body["digest"]) == (
        ["job.completed", "job.failed"], ["email", "slack"], "#ana", True)
    r = client.put("/api/me/notifications", headers=auth, json={"digest": False})
    assert r.get_json()["events"] == ["job.completed", "job.failed"] and r.get_json()["digest"] is False
    assert client.get("/api/me/notifications", headers=auth).get_json()["slack_channel"] == "#ana"

    for bad, field, says in (({"events": ["job.completed", "job.exploded"]}, "events.1", "'budget.threshold'"),
                             ({"channels": ["pigeon"]}, "channels.0", "'email' or 'slack'"),
                             ({"digest": "yes"}, "digest", "bool"),
                             ({"colour": "red"}, "colour", "unknown field"),
                             ({"events": "job.failed"}, "events", "array")):
        r = client.put("/api/me/notifications", headers=auth, json=bad)
        assert r.status_code == 400, bad
        error = r.get_json()["error"]
        assert error["field"] == field and says in error["message"], error
    assert client.get("/api/me/notifications", headers=auth).get_json()["events"] == ["job.completed", "job.failed"]


def test_the_owner_hears_only_the_events_they_chose_and_the_team_still_hears(wired, sendgrid, slack, client, auth,
                                                                           job, clock):
    client.put("/api/me/notifications", headers=auth, json={"events": ["job.failed"]})
    emit_completed(job)
    drain(clock)
    assert sendgrid.emails() == [] and len(slack.webhook_messages()) == 1


def test_slack_chosen_with_no_channel_to_go_to_is_shown_as_dead_with_what_to_do(wired, slack, client, auth, job,
                                                                               clock):
    wired.config["SLACK_CHANNEL"] = None
    client.put("/api/me/notifications", headers=auth, json={"channels": ["slack"]})
    emit_failed(job)
    drain(clock)
    mine = client.get("/api/notifications/outbox", headers=auth).get_json()["data"]
    assert [(m["destination"], m["status"], m["attempts"]) for m in mine] == [("(no Slack channel set)", "dead", 0)]
    assert "set one in your notification preferences" in mine[0]["last_error"]
    assert slack.bot_messages() == [] and len(slack.webhook_messages()) == 1


def test_the_routes_are_documented_and_answer_as_their_schemas_say(wired, client, auth, job, clock):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path, methods in (("/api/me/notifications", {"get", "put"}), ("/api/notifications/outbox", {"get"})):
        assert methods <= set(paths[path]) and not any(paths[path][m].get("x-undocumented") for m in methods)
    emit_completed(job)
    drain(clock)
    NotificationSettingsOut.model_validate(client.get("/api/me/notifications", headers=auth).get_json())
    NotificationSettingsOut.model_validate(client.put("/api/me/notifications", headers=auth,
                                                      json={"digest": True}).get_json())
    page = OutboxPage.model_validate(client.get("/api/notifications/outbox", headers=auth).get_json())
    assert page.total == 1 and page.data[0].status == "sent"


# ---------------------------------------------------------------------- the outbox
def test_the_outbox_shows_each_their_own_and_admins_everything(wired, client, job, make_user, clock):
    _, admin = make_user(ADMIN, "admin")
    _, other = make_user("omar@example.com")
    job_id, owner = job.id, _owner_auth(job)
    emit_completed(job)
    drain(clock)
    mine = client.get("/api/notifications/outbox", headers=owner).get_json()
    assert [(m["channel"], m["status"]) for m in mine["data"]] == [("email", "sent")]
    assert mine["data"][0]["job_id"] == job_id and mine["data"][0]["kind"] == "job.completed"
    assert client.get("/api/notifications/outbox", headers=other).get_json()["data"] == []
    everything = client.get("/api/notifications/outbox", headers=admin).get_json()
    assert {m["destination"] for m in everything["data"]} == {"ana@example.com", "team-webhook"}
    assert client.get("/api/notifications/outbox?status=dead", headers=admin).get_json()["total"] == 0
    assert client.get("/api/notifications/outbox?per_page=1", headers=admin).get_json()["total"] == 2
    for bad, field in (("per_page=101", "per_page"), ("status=lost", "status"), ("page=0", "page")):
        r = client.get(f"/api/notifications/outbox?{bad}", headers=admin)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field


# ---------------------------------------------------------------------- the console
def test_the_console_sets_preferences_and_shows_the_outbox(wired, make_person, job, clock):
    make_person("carla@example.com")
    make_person(ADMIN, role="admin")
    console = Console(wired).login("carla@example.com")
    page = console.get("/account/notifications").get_data(as_text=True)
    assert 'value="job.completed" checked' in page and 'name="digest"' in page
    r = console.post("/account/notifications", {"events": ["job.failed", "budget.threshold"],
                                                 "channels": ["email", "slack"], "slack_channel": "#carla",
                                                 "digest": "on"})
    assert r.status_code == 302
    carla = db.session.query(User).filter_by(email="carla@example.com").one()
    prefs = db.session.get(NotificationPreference, carla.id)
    assert (prefs.events, prefs.channels, prefs.slack_channel, prefs.digest) == (
        ["job.failed", "budget.threshold"], ["email", "slack"], "#carla", True)
    r = console.post("/account/notifications", {"events": ["job.exploded"], "channels": ["email"]})
    assert r.status_code == 400 and "Events: Input should be" in r.get_data(as_text=True)
    assert db.session.get(NotificationPreference, carla.id).events == ["job.failed", "budget.threshold"]

    emit_failed(job)                       # ana's job: carla sees none of it, the admin all of it
    drain(clock)
    assert 'id="outbox"' not in console.get("/outbox").get_data(as_text=True)
    boss = Console(wired).login(ADMIN)
    page = boss.get("/outbox").get_data(as_text=True)
    assert page.count('data-status="sent"') == 2 and "team-webhook" in page and "A job failed" in page
    filtered = boss.get("/outbox?status=dead").get_data(as_text=True)
    assert "No message is dead" in filtered


# ---------------------------------------------------------------------- the digest
def test_the_digest_is_made_once_a_day_from_its_hour_with_the_days_jobs_and_spend(wired, sendgrid, job, clock):
    wired.config["DIGEST_HOUR_UTC"] = 8
    owner = job.created_by
    db.session.add(NotificationPreference(user_id=owner, events=[], channels=["email"], digest=True))
    db.session.commit()
    now = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    started = now - timedelta(hours=3)
    done = _another_job(job.id, name="finished one", status="completed", started_at=started,
                        completed_at=now - timedelta(hours=2), actual_cost=1.5)
    _attempt(done, started, now - timedelta(hours=2))
    _another_job(job.id, name="failed one", status="failed", started_at=started, completed_at=now - timedelta(hours=1))
    old = _another_job(job.id, name="yesterday's", status="completed", started_at=now - timedelta(hours=40),
                       completed_at=now - timedelta(hours=30), actual_cost=2.0)
    _attempt(old, now - timedelta(hours=40), now - timedelta(hours=30))
    fixture_job = db.session.get(TrainingJob, job.id)
    fixture_job.status, fixture_job.started_at = "training", started

    assert digests.schedule(now - timedelta(minutes=1)) == 0          # 07:59: not yet
    assert digests.schedule(now) == 1
    assert digests.schedule(now + timedelta(hours=5)) == 0             # once a day
    payload = db.session.query(Notice).filter_by(kind="digest").one().payload
    assert [j["name"] for j in payload["finished"]] == ["finished one"]
    assert [j["name"] for j in payload["failed"]] == ["failed one"]
    assert [j["id"] for j in payload["running"]] == [job.id]
    assert payload["spend_24h_usd"] == 1.5 and payload["spend_month_usd"] == 1.5
    drain(clock)
    (mail,) = sendgrid.emails()
    assert mail["subject"] == "Your BrightRun digest for 2026-12-01: 1 finished, 1 failed, 1 running"
    assert "finished one" in mail["html"] and "$1.50" in mail["text"]
    assert digests.schedule(now + timedelta(days=1)) == 1              # the next day's


# ---------------------------------------------------------------------- helpers
def _owner_auth(job):
    owner = db.session.get(User, job.created_by)
    row, plain = ApiToken.issue(owner)
    db.session.add(row)
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _another_job(job_id: str, **fields) -> TrainingJob:
    base = db.session.get(TrainingJob, job_id)
    other = TrainingJob(training_file_id=base.training_file_id, name=fields.pop("name"),
                        configuration=base.configuration, preset=base.preset, base_model=base.base_model,
                        method=base.method, gpu_type=base.gpu_type, gpu_pricing_tier=base.gpu_pricing_tier,
                        cost_estimate=base.cost_estimate, storage_prefix=base.storage_prefix,
                        created_by=base.created_by, status=fields.pop("status", "provisioning"), **fields)
    db.session.add(other)
    db.session.commit()
    if other.status == "provisioning":
        db.session.add(JobAttempt(job=other, number=1, runpod_job_id="rp-x", runpod_status="IN_PROGRESS"))
        db.session.commit()
    return other


def _attempt(job, started, ended):
    db.session.add(JobAttempt(job=job, number=1, runpod_job_id=f"rp-{job.id}", started_at=started, ended_at=ended,
                              outcome="completed"))
    db.session.commit()
