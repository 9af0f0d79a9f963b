"""The deployment package of a completed job: built on first download from the adapter in
storage and the newest evaluation's answers (``deployment_package`` writes it), then kept
beside the adapter ZIP, one per evaluation."""
from __future__ import annotations

import os
import tempfile

from control.extensions import db
from control.models import ModelArtifact, TrainingJob
from control.services import evaluations
from control.services.deployment_package import GenerationDefaults, PackageSpec, write_package
from control.services.exceptions import Conflict, NotFound
from control.services.storage import get_storage
from shared.evaluation.report import read_samples

EXAMPLES_PER_SUITE = {"ei": 6, "heldout": 6, "custom": 6}


def _examples(job: TrainingJob, run_id: str | None) -> list[dict]:
    if run_id is None:
        return []
    storage, layout = get_storage(), evaluations.layout_of(job, run_id)
    out = []
    for suite, n in EXAMPLES_PER_SUITE.items():
        for s in read_samples(storage, layout.samples(suite))[:n]:
            out.append({"suite": suite, "id": s.id, "messages": s.prompt, "adapter_answer": s.adapter,
                        "reference": s.reference})
    return out


def _system_prompt(examples: list[dict]) -> str | None:
    """The system message the evaluation's scenarios were answered under, if any."""
    for e in examples:
        if e["suite"] == "ei" and e["messages"] and e["messages"][0].get("role") == "system":
            return e["messages"][0]["content"]
    return None


def _headlines(view: dict) -> list[str]:
    lines = []
    for m in view.get("measures", []):
        if m.get("improvement") is not None and m["status"] != "informational":
            lines.append(f"{m['name']}: {m['improvement']:g}{m.get('improvement_unit') or ''} "
                         f"({str(m['status']).replace('_', ' ')})")
    return lines


def package_key(job: TrainingJob, art: ModelArtifact) -> str:
    """Build the package once per evaluation (in a temporary folder, not in memory) and store it."""
    try:
        view = evaluations.view(job)
    except NotFound:
        view = {"measures": [], "run": None}
    run_id = (view.get("run") or {}).get("id")
    storage = get_storage()
    key = job.layout.deployment_package(run_id or "none")
    if storage.exists(key):
        return key
    with tempfile.TemporaryDirectory() as tmp:
        adapter = os.path.join(tmp, "adapter")
        for obj in storage.list(art.adapter_path):
            local = os.path.join(adapter, obj[len(art.adapter_path):].lstrip("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            storage.get_file(obj, local)
        settings = (job.configuration.get("evaluation") or {})
        try:
            examples = _examples(job, run_id)
            spec = PackageSpec(job_id=job.id, job_name=job.name, base_model=job.base_model, method=job.method,
                               adapter_dir=adapter, examples=examples, system_prompt=_system_prompt(examples),
                               generation=GenerationDefaults(max_new_tokens=int(settings.get("max_new_tokens") or 256)),
                               measures_text=_headlines(view))
        except ValueError as exc:           # an adapter in storage without its tokenizer, say
            raise Conflict(f"job {job.id}'s outputs cannot make a deployment package: {exc}".replace(tmp, ""),
                           code="package_unavailable") from None
        path = os.path.join(tmp, "package.zip")
        write_package(path, spec)
        storage.put_file(key, path)
    art.deployment_package_path = key
    db.session.commit()
    return key

