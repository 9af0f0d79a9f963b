"""A rendered example of each notification kind, for people to look at: the Slack message
(the Block Kit payload the webhook and the bot post, as JSON) and the email (HTML and
text), written to ``docs/notifications/`` with an index.

The messages are made by the product's own code (``control/services/notifications/``:
``kinds.compose`` from a notice's facts, ``slack.blocks``, ``mail.render``) from the facts
of a sample job, in the shape ``facts.gather`` reads them from the database, so no
database, Redis or provider account is needed; the output is the same on every run.

    .venv/bin/python scripts/notification_examples.py [--out docs/notifications]
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from control.models import NOTICE_KINDS  # noqa: E402
from control.services.notifications import kinds, mail, slack  # noqa: E402
from control.services.notifications.facts import job_links  # noqa: E402

BASE = "https://brightrun.example.com"
JOB_ID = "tj_5f3c1a9e2b7d4c60"
WHEN = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
OOM = {"type": "out_of_memory", "message": "CUDA out of memory at step 212 (79.3 of 80 GB in use)",
       "cause": "a batch of 4 conversations of up to 2048 tokens does not fit in the GPU's memory",
       "fix": "reduce batch_size to 2 and raise gradient_accumulation_steps to 8 (Retry applies it)"}


def sample_job(**changes) -> dict:
    job = {"id": JOB_ID, "name": "Acme Wealth voice · balanced", "status": "completed", "owner": "ana@example.com",
           "tags": ["acme"], "duration_min": 47.5, "cost_usd": 1.97, "estimate_usd": 2.10, "projected_usd": None,
           "max_cost_usd": None, "interruptions": 1, "error": None, "perplexity_pct": 32.5, "retention_pct": 100.0,
           "approval": {}, **job_links(BASE, JOB_ID)}
    return {**job, **changes}


def running(**changes) -> dict:
    return sample_job(**{"status": "training", "duration_min": 22.0, "perplexity_pct": None, "retention_pct": None,
                         **changes})


#: Each kind: the job's facts then, and what its notice's payload carries.
EXAMPLES = {
    "job.completed": (sample_job(), {}),
    "job.failed": (sample_job(status="failed", duration_min=18.2, cost_usd=0.74, interruptions=0, error=OOM,
                              perplexity_pct=None, retention_pct=None), {}),
    "job.cancelled": (sample_job(status="cancelled", duration_min=9.0, cost_usd=0.31, interruptions=0,
                                 perplexity_pct=None, retention_pct=None), {}),
    "job.stalled": (running(status="stalled"), {"silent_seconds": 720, "stall_limit_seconds": 600}),
    "job.recovered": (running(), {"resumed_from_step": 200, "attempt": 2}),
    "job.awaiting_approval": (sample_job(status="awaiting_approval", duration_min=None, cost_usd=0.0,
                                         estimate_usd=186.40, interruptions=0, perplexity_pct=None,
                                         retention_pct=None),
                              {"recipients": ["boss@example.com"], "approval_threshold_usd": 150.0}),
    "job.approval_decided": (sample_job(status="queued", duration_min=None, cost_usd=0.0, estimate_usd=186.40,
                                        interruptions=0, perplexity_pct=None, retention_pct=None),
                             {"decision": "approved", "decided_by": "boss@example.com",
                              "reason": "Acme signed off the spend for this run"}),
    "job.cost_alert": (running(cost_usd=1.70), {"percent": 80, "projected_cost_usd": 2.38,
                                                "message": "the job has cost $1.70, 81% of its estimate"}),
    "job.over_estimate": (running(cost_usd=1.70, projected_usd=2.61),
                          {"projected_usd": 2.61, "projected_cost_usd": 2.61}),
    "evaluation.ready": (sample_job(status="completed"), {"perplexity_improvement_pct": 32.5,
                                                          "forgetting_retention": 100.0}),
    "delivery.approved": (sample_job(), {"decided_by": "rita@example.com",
                                         "reason": "perplexity and retention met; brand voice 4.4 of 5"}),
    "delivery.rejected": (sample_job(), {"decided_by": "rita@example.com",
                                         "reason": "brand voice 3.9 of 5: under the 4.25 target"}),
    "budget.threshold": (None, {"percent": 95, "limit_usd": 500.0, "spent_usd": 476.20, "committed_usd": 12.40,
                                "month": "2026-12", "recipients": ["boss@example.com"],
                                "channels": ["email", "slack"]}),
    "digest": (None, {"finished": [{"id": JOB_ID, "name": "Acme Wealth voice · balanced"}],
                      "failed": [{"id": "tj_0a1b2c3d4e5f6a7b", "name": "Acme FAQ · aggressive"}],
                      "running": [{"id": "tj_9e8d7c6b5a4f3e2d", "name": "Northwind onboarding · conservative"}],
                      "spend_24h_usd": 3.42, "spend_month_usd": 211.87, "date": "2026-12-01"}),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "notifications"))
    out = Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in NOTICE_KINDS:
        job, payload = EXAMPLES[kind]
        msg = kinds.compose({"kind": kind, "payload": payload, "base_url": BASE, "created_at": WHEN, "job": job})
        email = mail.render(msg)
        stem = kind.replace(".", "-")
        (out / f"{stem}.slack.json").write_text(json.dumps(
            {"text": f"{msg.subject}: {msg.headline}", "blocks": slack.blocks(msg)}, indent=2, ensure_ascii=False) + "\n")
        (out / f"{stem}.email.html").write_text(email["html"])
        (out / f"{stem}.email.txt").write_text(email["text"])
        rows.append(f"| `{kind}` | {msg.subject} | [Slack]({stem}.slack.json) · [HTML]({stem}.email.html) · "
                    f"[text]({stem}.email.txt) |")
    (out / "README.md").write_text(
        "# Notifications: an example of each kind\n\n"
        "Made by `scripts/notification_examples.py` from a sample job's facts, with the product's own "
        "rendering (`control/services/notifications/`). The Slack file is the payload the team's webhook "
        "and the bot post (paste its `blocks` into Slack's Block Kit Builder to see it); the email is "
        "sent through SendGrid with both parts.\n\n"
        "| Kind | Subject | Files |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"{len(rows)} kinds rendered into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
