"""Checkpoints in object storage, written atomically: files first, the manifest last.

Only a checkpoint with a manifest counts, and its files are checked against the
manifest's sizes and sha256 when it is loaded; a damaged one is skipped for the one before
it. Keys are ``<prefix>/checkpoints/step-00000100/<file>``, keyed by the training job, so
any attempt (or RunPod's own re-run of one) finds them.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from shared.errors import StorageError
from shared.storage import Storage, join

MANIFEST = "manifest.json"


class DamagedCheckpoint(StorageError):
    """A checkpoint whose files do not match its manifest: skipped for the one before it."""
_STEP = re.compile(r"/?checkpoints/step-(\d{8})/manifest\.json$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_key(prefix: str, step: int) -> str:
    return join(prefix, "checkpoints", f"step-{step:08d}")


@dataclass(frozen=True)
class Checkpoint:
    key: str
    step: int
    manifest: dict


def save(storage: Storage, prefix: str, step: int, files: dict[str, Path], meta: dict) -> str:
    """Upload ``files`` (name -> local path), then the manifest that makes them count."""
    key = checkpoint_key(prefix, step)
    entries = {}
    for name, path in files.items():
        size = storage.put_file(join(key, name), path)
        entries[name] = {"size": size, "sha256": sha256_file(path)}
    manifest = {"step": step, "files": entries, "meta": meta,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    storage.put_bytes(join(key, MANIFEST), json.dumps(manifest, indent=1).encode())
    return key


def candidates(storage: Storage, prefix: str) -> list[Checkpoint]:
    """Manifested checkpoints, newest first."""
    found = []
    for k in storage.list(join(prefix, "checkpoints")):
        m = _STEP.search(k)
        if m:
            try:
                manifest = json.loads(storage.get_bytes(k))
            except (StorageError, ValueError):
                continue
            found.append(Checkpoint(k.rsplit("/", 1)[0], int(m.group(1)), manifest))
    return sorted(found, key=lambda c: -c.step)


def find(storage: Storage, key: str) -> Checkpoint | None:
    """The checkpoint at ``key`` (``<prefix>/checkpoints/step-N``), if it is complete."""
    m = _STEP.search(join(key, MANIFEST))
    manifest_key = join(key, MANIFEST)
    if m is None or not storage.exists(manifest_key):
        return None
    return Checkpoint(key, int(m.group(1)), json.loads(storage.get_bytes(manifest_key)))


def download(storage: Storage, ckpt: Checkpoint, dest: Path) -> dict[str, Path]:
    """Fetch a checkpoint's files and verify them; raises StorageError if any is damaged."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, entry in ckpt.manifest["files"].items():
        path = dest / name
        storage.get_file(join(ckpt.key, name), path)
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise DamagedCheckpoint(f"checkpoint {ckpt.key}: {name} does not match its manifest")
        paths[name] = path
    return paths


def prune(storage: Storage, prefix: str, keep: int = 2) -> None:
    """Delete all but the newest ``keep`` checkpoints (manifest first, so none half-counts)."""
    for ckpt in candidates(storage, prefix)[keep:]:
        storage.delete(join(ckpt.key, MANIFEST))
        storage.delete_prefix(ckpt.key)
