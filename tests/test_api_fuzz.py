"""The JSON API fuzzed by schemathesis against the running app, on Postgres.

The app serves on 127.0.0.1 (werkzeug's threaded server) with real data behind it: a user
and their token, a ready training file, a pending job, a completed job with metrics, events
and an adapter in storage, and a signed download link. Path parameters take those real
ids (a job of its own for DELETE, the pending one for start, cancel and checkpoint; the
stateful phase uploads files and makes tokens, then deletes them), so operations reach their
2xx answers as well as their refusals. Every operation, every check schemathesis has (server
errors, response schemas, status codes, content types, headers, positive and negative data,
unsupported methods and their Allow header, ignored auth, the stateful checks), a few
examples an operation, bounded in time. The figures go to stdout (``-s``) and the README.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.engine import events as st_events  # noqa: E402
from schemathesis.engine import from_schema  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from control.extensions import db  # noqa: E402
from control.models import ApiToken, JobAttempt, ModelArtifact, TrainingJob, User  # noqa: E402
from control.services.ingest import ingest  # noqa: E402
from control.services.storage import get_storage  # noqa: E402
from tests.job_events import events_of  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 6          # per operation and phase
MAX_SECONDS = 150         # the whole run, whatever it has left


@contextmanager
def serving(app):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)     # thousands of request lines
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def _job(client, auth, file_id, name) -> str:
    r = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id, "name": name})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _complete(job_id: str) -> None:
    """A job that trained: an attempt, its events and metrics, an adapter and a summary."""
    job = db.session.get(TrainingJob, job_id)
    attempt = JobAttempt(job=job, number=1, runpod_job_id="rp-fuzz", runpod_status="COMPLETED")
    db.session.add(attempt)
    db.session.commit()
    ingest(job, attempt, events_of(job.id, steps=4))
    storage, prefix = get_storage(), f"jobs/{job.id}/outputs"
    storage.put_bytes(f"{prefix}/adapter/adapter_config.json", b'{"r": 8}')
    storage.put_bytes(f"{prefix}/adapter/adapter_model.safetensors", b"\0" * 64)
    storage.put_bytes(f"{prefix}/summary.json", json.dumps({"eval": {"improvement_pct": 12.5}}).encode())
    db.session.add(ModelArtifact(training_job_id=job.id, adapter_path=f"{prefix}/adapter",
                                 summary_path=f"{prefix}/summary.json", base_perplexity=20.0,
                                 trained_perplexity=17.5, perplexity_improvement_pct=12.5,
                                 evaluation={"improvement_pct": 12.5}))
    job.status, job.progress_percentage = "completed", 100.0
    db.session.commit()


def world(app, make_user, upload, small_sample) -> dict:
    """Real ids for every path parameter, and the token that reaches them."""
    client = app.test_client()
    user_id, auth = make_user("fuzz@example.com")
    file_id = upload(small_sample, headers=auth).get_json()["id"]
    pending, done, doomed = (_job(client, auth, file_id, n) for n in ("pending", "done", "doomed"))
    _complete(done)
    spare_token, _ = ApiToken.issue(db.session.get(User, user_id), name="spare")
    db.session.add(spare_token)
    db.session.commit()
    link = client.get(f"/api/training/jobs/{done}/download/adapters?redirect=false", headers=auth)
    assert link.status_code == 200, link.get_json()
    return {"auth": auth, "file_id": file_id, "pending": pending,
            "done": done, "doomed": doomed, "spare_token": spare_token.id,
            "signed": link.get_json()["url"].rsplit("/", 1)[1]}


# Operations whose rules go beyond what a JSON Schema can say, so that schema-valid input
# may still be refused with a 4xx naming the problem: the base models on this deployment's
# list (admins add to it), the GPU catalog, settings that must fit together, a checkpoint
# that must exist, a dataset's content (422). Their other refusals stay failures.
BEYOND_THE_SCHEMA = {
    "POST /api/training/jobs": ["400", "422"],
    "POST /api/training/jobs/{job_id}/retry": ["400", "422"],
    "GET /api/training/cost-estimate": ["400"],
    "POST /api/training-files": ["400", "422"],    # a format of the other purpose
    "POST /api/base-models": ["400"],
    "GET /api/training/budget/monthly": ["400"],      # a month before 2020 or after this one
    "GET /api/training/budget/monthly.csv": ["400"],
    "POST /api/webhooks": ["400"],                     # a private address, credentials in the URL
    "GET /api/training/jobs": ["400"],                 # a cost or duration range's upper end below its lower
    "POST /api/training/templates": ["400"],           # a base model or GPU this deployment lacks
    "GET /api/training/jobs/compare": ["400"],         # a duplicate id
    "GET /api/training/jobs/compare.pdf": ["400"],
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]


def config(base: str, ids: dict) -> SchemathesisConfig:
    def on(name: str, **params) -> dict:
        return {"include-name": name, "parameters": params}

    def beyond(name: str, statuses: list[str]) -> dict:
        return {"include-name": name,
                "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + statuses}}}
    job = "/api/training/jobs/{job_id}"
    return SchemathesisConfig.from_dict({
        "max-time": MAX_SECONDS, "seed": 11,
        "base-url": base, "headers": {"Authorization": ids["auth"]["Authorization"]},
        "generation": {"max-examples": MAX_EXAMPLES},
        "parameters": {"path.job_id": ids["done"], "path.file_id": ids["file_id"],
                       "path.token_id": ids["spare_token"], "path.token": ids["signed"]},
        "operations": [
            on(f"DELETE {job}", **{"path.job_id": ids["doomed"]}),
            on(f"POST {job}/start", **{"path.job_id": ids["pending"]}),
            on(f"POST {job}/cancel", **{"path.job_id": ids["pending"]}),
            on(f"POST {job}/checkpoint", **{"path.job_id": ids["pending"]}),
            *(beyond(name, statuses) for name, statuses in BEYOND_THE_SCHEMA.items()),
            # Revoking every share link keeps them listed, as revoked (their views stay countable).
            {"include-name": f"DELETE {job}/share", "checks": {"use_after_free": {"enabled": False}}},
        ],
    })


def fuzz(schema) -> dict:
    started = time.monotonic()
    operations, failures, statuses = set(), [], Counter()
    requests, stop, phases = 0, None, Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, (st_events.ScenarioFinished, st_events.FuzzScenarioFinished)):
            recorder = event.recorder
            if recorder.interactions and getattr(event, "phase", None) != "stateful":
                operations.add(recorder.label)
            for interaction in recorder.interactions.values():
                requests += 1
                phases[getattr(event, "phase", "fuzzing")] += 1
                if interaction.response is not None:
                    statuses[f"{interaction.response.status_code // 100}xx"] += 1
            for case_id, nodes in recorder.checks.items():
                answer = getattr(recorder.interactions.get(case_id), "response", None)
                for node in nodes:
                    if node.failure_info is not None:
                        f = node.failure_info.failure
                        sample = node.failure_info.code_sample.replace("\n", " ")
                        sample = sample if len(sample) < 600 else sample[:300] + " ... " + sample[-300:]
                        got = (f"{answer.status_code} {answer.content[:160]!r}" if answer is not None
                               else "no answer")
                        failures.append(f"{recorder.label}: [{node.name}] {f.title}: "
                                        f"{f.message.splitlines()[0][:200]}\n    {sample}\n    -> {got}")
        elif isinstance(event, (st_events.NonFatalError, st_events.FatalError)):
            failures.append(f"error: {getattr(event, 'label', '')} {getattr(event, 'info', event)}")
        elif isinstance(event, st_events.EngineFinished):
            stop = event.stop_reason
    return {"operations": operations, "requests": requests, "failures": failures,
            "statuses": dict(statuses), "seconds": round(time.monotonic() - started, 1), "stop": stop,
            "phases": {str(k): v for k, v in phases.items()}}


@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_fuzzing_every_operation_finds_no_server_error_and_no_answer_off_its_schema(
        app, make_user, upload, small_sample):
    app.config["UPLOAD_WAIT_SECONDS"] = 0.2      # no validation worker runs here
    ids = world(app, make_user, upload, small_sample)
    with serving(app) as base:
        schema = schemathesis.openapi.from_url(base + "/api/openapi.json", config=config(base, ids))
        documented = {f"{op.method.upper()} {op.path}" for op in
                      (result.ok() for result in schema.get_all_operations())}
        result = fuzz(schema)
    print(f"\nschemathesis: {len(result['operations'])} operations of {len(documented)}, "
          f"{result['requests']} requests in {result['seconds']} s, statuses {result['statuses']}, "
          f"requests by phase {result['phases']}, stopped: {result['stop']}")
    # The stateful phase fills path parameters without their schema's pattern (which excludes
    # control characters): the app's 400 naming the parameter is what a client should get.
    # And revoking every share link (DELETE .../share) keeps them listed, as revoked, by design.
    unique = sorted({f for f in result["failures"] if not (
        ("[positive_data_acceptance]" in f and "must not contain control characters" in f)
        or ("[use_after_free]" in f and f.split(" -> ")[0].rstrip().endswith("/share")))})
    assert not unique, f"{len(unique)} distinct failures:\n" + "\n".join(unique[:40])
    missed, extra = documented - result["operations"], result["operations"] - documented
    assert not missed and not extra, f"never reached: {missed}; not in the document: {extra}"
    assert "5xx" not in result["statuses"]
