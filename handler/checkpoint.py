"""Checkpoints in object storage, written atomically: files first, the manifest last.

Only a checkpoint with a manifest counts, and its files are checked against the
manifest's sizes and sha256 when it is loaded; a damaged one is skipped for the one before
it. Where they live, and which are complete, is ``shared.storage.layout``'s: keyed by the
training job, so any attempt (or RunPod's own re-run of one) finds them. Writing and
pruning them is the handler's, here.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from shared.errors import StorageError
from shared.storage import Storage, join
from shared.storage.layout import MANIFEST, Checkpoint, JobLayout, complete_checkpoints


class DamagedCheckpoint(StorageError):
    """A checkpoint whose files do not match its manifest: skipped for the one before it."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(storage: Storage, layout: JobLayout, step: int, files: dict[str, Path], meta: dict) -> str:
    """Upload ``files`` (name -> local path), then the manifest that makes them count."""
    key = layout.checkpoint(step)
    entries = {}
    for name, path in files.items():
        size = storage.put_file(join(key, name), path)
        entries[name] = {"size": size, "sha256": sha256_file(path)}
    manifest = {"step": step, "files": entries, "meta": meta,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    storage.put_bytes(join(key, MANIFEST), json.dumps(manifest, indent=1).encode())
    return key


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


def prune(storage: Storage, layout: JobLayout, keep: int = 2) -> None:
    """Delete all but the newest ``keep`` checkpoints (manifest first, so none half-counts)."""
    for ckpt in complete_checkpoints(storage, layout)[keep:]:
        storage.delete(ckpt.manifest_key)
        storage.delete_prefix(ckpt.key)
