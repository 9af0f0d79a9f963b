"""Outgoing webhooks, on Postgres and SQLite: registering (the secret shown once), the URL
rules, and deliveries to a real receiver on a localhost port that checks every signature
with the ``standardwebhooks`` library, answers 500 at first, and is retried until it takes
one. Notices are made as the lifecycle makes them (``notices.job_event``) and fanned out
and delivered by an RQ worker on the notify queue."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from rq import SimpleWorker
from standardwebhooks import Webhook
from werkzeug.wrappers import Request, Response

from control.extensions import db
from control.models import TrainingJob, User, WebhookDelivery, WebhookEndpoint, utcnow
from control.services import notices, queue, webhooks
from tests.local_server import LocalServer
from tests.test_console import PASSWORD, Console


class Receiver(LocalServer):
    """An API caller's webhook endpoint: records each request; answers ``fail_first`` of
    them with 500, then 204."""

    name = "webhook-receiver"

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests: list[tuple[dict, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((dict(request.headers), request.get_data(as_text=True)))
            failing = len(self.requests) <= self.fail_first
        return Response(status=500 if failing else 204)(environ, start_response)

    @property
    def url(self) -> str:
        return self.address + "/hooks/brightrun"


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def hooks(receiver):
    """The module's receiver, emptied, answering 500 to the first ``fail_first`` requests."""
    receiver.requests.clear()
    receiver.fail_first = 0
    return receiver


def _work() -> None:
    """Run the notify queue until it is empty: fan-outs, then deliveries and their retries."""
    SimpleWorker([queue.notify_queue()], connection=queue.redis_connection()).work(burst=True)


def _register(client, headers, **body):
    r = client.post("/api/webhooks", headers=headers, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _completed(job_id: str) -> None:
    job = db.session.get(TrainingJob, job_id)
    job.status = "completed"
    notices.job_event("job.completed", job)
    db.session.commit()


# ---------------------------------------------------------------------------- registering

def test_the_secret_is_shown_once_and_kept_only_encrypted(app, client, auth):
    made = _register(client, auth, url="https://hooks.example.com/a", description="CI")
    assert made["secret"].startswith("whsec_") and made["events"] == list(webhooks.WEBHOOK_EVENTS)
    Webhook(made["secret"])                                      # the library takes it as it is
    listed = client.get("/api/webhooks", headers=auth).get_json()["data"]
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    assert made["secret"] not in json.dumps(listed)
    row = db.session.get(WebhookEndpoint, made["id"])
    assert made["secret"] not in row.secret_encrypted and made["secret"][6:] not in row.secret_encrypted
    assert webhooks.unseal(row.secret_encrypted) == made["secret"]


@pytest.mark.parametrize("url, says", [
    ("ftp://example.com/hook", "http or https"),
    ("example.com/hook", "http or https"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://example.com/" + "a" * 2048, "2048"),
    ("https://exa mple.com/hook", "spaces"),
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://10.0.0.7/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:192.168.1.1]/hook", "private"),
    ("http://0.0.0.0/hook", "unspecified"),
])
def test_a_url_that_is_not_a_public_http_endpoint_is_refused_saying_why(url, says):
    with pytest.raises(webhooks.InvalidWebhookUrl, match=says):
        webhooks.check_url(url, allow_private=False)


def test_the_api_refuses_such_a_url_with_a_400_naming_the_url(app, client, auth):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    r = client.post("/api/webhooks", headers=auth, json={"url": "http://169.254.169.254/latest/meta-data"})
    err = r.get_json()["error"]
    assert r.status_code == 400 and err["field"] == "url" and err["message"].startswith("url: host"), err
    r = client.post("/api/webhooks", headers=auth, json={"url": "https://example.com/" + "a" * 2048})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "url"
    assert db.session.query(WebhookEndpoint).count() == 0


def test_a_public_address_is_taken_and_private_ones_only_where_allowed(app, client, auth):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    _register(client, auth, url="https://93.184.215.14/hook")
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True               # the embedded default: one machine
    _register(client, auth, url="http://127.0.0.1:9/hook")


def test_unknown_events_and_fields_are_refused_naming_them(app, client, auth):
    r = client.post("/api/webhooks", headers=auth, json={"url": "https://example.com/h", "events": ["job.done"]})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "events.0"
    r = client.post("/api/webhooks", headers=auth, json={"url": "https://example.com/h", "events": []})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "events"
    r = client.post("/api/webhooks", headers=auth, json={"url": "https://example.com/h", "secret": "mine"})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "secret"


def test_a_user_has_at_most_ten_endpoints(app, client, auth):
    for n in range(webhooks.MAX_ENDPOINTS_PER_USER):
        _register(client, auth, url=f"https://example.com/{n}")
    r = client.post("/api/webhooks", headers=auth, json={"url": "https://example.com/11"})
    assert r.status_code == 409 and "limit is 10" in r.get_json()["error"]["message"]
    first = client.get("/api/webhooks", headers=auth).get_json()["data"][0]["id"]
    assert client.delete(f"/api/webhooks/{first}", headers=auth).status_code == 200
    _register(client, auth, url="https://example.com/11")         # a deleted one frees its place


def test_another_users_endpoint_is_not_found(app, client, auth, make_user):
    mine = _register(client, auth, url="https://example.com/mine")
    _, theirs = make_user("bo@example.com")
    assert client.get("/api/webhooks", headers=theirs).get_json()["data"] == []
    assert client.delete(f"/api/webhooks/{mine['id']}", headers=theirs).status_code == 404
    assert client.get(f"/api/webhooks/{mine['id']}/deliveries", headers=theirs).status_code == 404


# ---------------------------------------------------------------------------- deliveries

def test_a_delivery_is_signed_retried_after_500s_and_logged(app, client, auth, job, hooks):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=0)                 # retries are due at once
    hooks.fail_first = 2
    made, job_id = _register(client, auth, url=hooks.url), job.id
    _completed(job_id)
    _work()

    assert len(hooks.requests) == 3
    verified = [Webhook(made["secret"]).verify(body, headers) for headers, body in hooks.requests]
    assert verified[0] == verified[2] and verified[0]["type"] == "job.completed"
    assert verified[0]["data"]["job_id"] == job_id and verified[0]["data"]["status"] == "completed"
    ids = {headers["Webhook-Id"] for headers, _ in hooks.requests}
    assert len(ids) == 1 and ids.pop().startswith("msg_")        # one message, sent three times
    log = client.get(f"/api/webhooks/{made['id']}/deliveries", headers=auth).get_json()
    assert [(d["status"], d["attempts"], d["response_status"], d["last_error"]) for d in log["data"]] == \
        [("delivered", 3, 204, None)]
    assert log["next_before_id"] is None


def test_a_forged_or_altered_delivery_fails_verification(app, client, auth, job, hooks):
    made = _register(client, auth, url=hooks.url)
    _completed(job.id)
    _work()
    (headers, body), = hooks.requests
    with pytest.raises(Exception, match="signature"):
        Webhook(made["secret"]).verify(body.replace("completed", "failed"), headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_failures_back_off_doubling_and_end_dead(app, client, auth, job, hooks):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=5, WEBHOOK_MAX_ATTEMPTS=3)
    hooks.fail_first = 100
    _register(client, auth, url=hooks.url)
    _completed(job.id)
    _work()                                                      # fan-out and the first try
    delivery = db.session.query(WebhookDelivery).one()
    waits = []
    while True:
        d = db.session.get(WebhookDelivery, delivery.id)
        if d.status != "retrying":
            break
        waits.append(round((d.next_attempt_at - utcnow()).total_seconds()))
        assert webhooks.deliver(d.id) == "not due"               # early: nothing sent
        d.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        webhooks.deliver(d.id)
    d = db.session.get(WebhookDelivery, delivery.id)
    assert (d.status, d.attempts, d.response_status) == ("dead", 3, 500)
    assert d.last_error == "the receiver answered HTTP 500"
    assert waits[0] in (4, 5) and waits[1] in (9, 10)            # 5 s, then 10 s
    assert len(hooks.requests) == 3
    assert webhooks.deliver(d.id) == "dead" and len(hooks.requests) == 3


def test_an_unreachable_receiver_is_retried_with_the_error_logged(app, client, auth, job):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=5)
    with Receiver() as gone:
        url = gone.url                                           # a port nobody listens on once stopped
    _register(client, auth, url=url)
    _completed(job.id)
    _work()
    d = db.session.query(WebhookDelivery).one()
    assert d.status == "retrying" and d.attempts == 1 and d.response_status is None
    assert "ConnectError" in d.last_error
    scheduled = queue.notify_queue().scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1                                   # its retry waits in RQ's scheduler


def test_a_deleted_endpoint_gets_nothing_more(app, client, auth, job, hooks):
    made = _register(client, auth, url=hooks.url)
    _register(client, auth, url=hooks.url + "?second")
    client.delete(f"/api/webhooks/{made['id']}", headers=auth)
    _completed(job.id)
    _work()
    assert [h["Webhook-Id"] for h, _ in hooks.requests] and len(hooks.requests) == 1
    assert db.session.query(WebhookDelivery).filter_by(endpoint_id=made["id"]).count() == 0


def test_deleting_an_endpoint_stops_its_pending_retries(app, client, auth, job, hooks):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=5)
    hooks.fail_first = 1
    made = _register(client, auth, url=hooks.url)
    _completed(job.id)
    _work()
    client.delete(f"/api/webhooks/{made['id']}", headers=auth)
    d = db.session.query(WebhookDelivery).one()
    d.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert webhooks.deliver(d.id) == "dead" and len(hooks.requests) == 1
    log = client.get(f"/api/webhooks/{made['id']}/deliveries", headers=auth).get_json()["data"]
    assert log[0]["status"] == "dead" and "deleted" in log[0]["last_error"]


def test_only_the_owners_endpoints_subscribed_to_the_event_hear_of_it(app, client, auth, job, hooks, make_user):
    _, bo = make_user("bo@example.com")
    _register(client, bo, url=hooks.url + "?bo")                 # another user's endpoint
    _register(client, auth, url=hooks.url + "?failures", events=["job.failed"])
    job_id = job.id
    _completed(job_id)                                           # ana's job
    _work()
    assert hooks.requests == []
    mine = _register(client, auth, url=hooks.url + "?all")
    job = db.session.get(TrainingJob, job_id)
    notices.job_event("evaluation.ready", job, perplexity_improvement_pct=31.5)
    db.session.commit()
    _work()
    (headers, body), = hooks.requests
    event = Webhook(mine["secret"]).verify(body, headers)
    assert event["type"] == "evaluation.ready" and event["data"]["perplexity_improvement_pct"] == 31.5


def test_notices_that_are_not_webhook_events_send_nothing(app, client, auth, job, hooks):
    _register(client, auth, url=hooks.url)
    job = db.session.get(TrainingJob, job.id)
    notices.job_event("job.cost_alert", job, percent=80)
    db.session.commit()
    _work()
    assert hooks.requests == [] and db.session.query(WebhookDelivery).count() == 0


def test_the_delivery_log_pages_newest_first(app, client, auth, job, hooks):
    made = _register(client, auth, url=hooks.url)
    job = db.session.get(TrainingJob, job.id)
    for n in range(5):
        notices.job_event("job.stalled", job, dedupe_key=f"stalled-{n}")
    db.session.commit()
    _work()
    first = client.get(f"/api/webhooks/{made['id']}/deliveries?limit=3", headers=auth).get_json()
    rest = client.get(f"/api/webhooks/{made['id']}/deliveries?limit=3&before_id={first['next_before_id']}",
                      headers=auth).get_json()
    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and rest["next_before_id"] is None
    r = client.get(f"/api/webhooks/{made['id']}/deliveries?limit=1000", headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "limit"


# ---------------------------------------------------------------------------- the console

@pytest.fixture
def console(app, make_person):
    make_person()
    return Console(app).login("ana@example.com")


def test_the_console_adds_an_endpoint_showing_its_secret_once(app, console, hooks):
    console.get("/webhooks")
    r = console.post("/webhooks", {"url": hooks.url, "events": ["job.completed", "job.failed"],
                                   "description": "pager"})
    page = r.get_data(as_text=True)
    assert r.status_code == 201 and "whsec_" in page and "not be shown again" in page
    assert r.headers["Cache-Control"] == "no-store"
    row = db.session.query(WebhookEndpoint).one()
    assert row.events == ["job.completed", "job.failed"] and row.description == "pager"
    again = console.get("/webhooks").get_data(as_text=True)
    assert hooks.url in again and "whsec_" not in again


def test_the_console_names_what_is_wrong_with_a_url(app, console):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    console.get("/webhooks")
    r = console.post("/webhooks", {"url": "http://10.0.0.7/hook", "events": ["job.completed"]})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "URL: host &#39;10.0.0.7&#39; is a private address" in page
    assert 'value="http://10.0.0.7/hook"' in page                  # the form keeps what was typed
    r = console.post("/webhooks", {"url": "https://example.com/h"})
    assert r.status_code == 400 and "Events: choose at least one." in r.get_data(as_text=True)
    assert db.session.query(WebhookEndpoint).count() == 0


def test_the_console_shows_the_delivery_log_and_deletes(app, job, hooks):
    owner = db.session.get(User, job.created_by)
    owner.set_password(PASSWORD)
    db.session.commit()
    console = Console(app).login(owner.email)
    webhook_id = webhooks.register(owner, hooks.url)[0].id
    _completed(job.id)
    _work()
    page = console.get(f"/webhooks/deliveries?webhook_id={webhook_id}").get_data(as_text=True)
    assert "job.completed" in page and "delivered" in page and "msg_" in page
    console.get("/webhooks")
    r = console.post("/webhooks/delete", {"webhook_id": webhook_id})
    assert r.status_code == 302
    assert db.session.get(WebhookEndpoint, webhook_id).deleted_at is not None
    page = console.get("/webhooks").get_data(as_text=True)
    assert "is deleted: nothing more is sent there" in page and f'data-webhook-id="{webhook_id}"' not in page
    assert console.get("/webhooks/deliveries?webhook_id=whk_nope").status_code == 404
