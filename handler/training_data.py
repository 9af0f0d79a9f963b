"""The job's dataset made ready to train: read from storage and checked against its sha256,
filtered by quality, split by conversation, folded and tokenized with the model's chat
template; the warnings it gives, and its report in ``summary.json``."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from handler.tokenization import EncodedSplit, encode_conversations
from shared.dataset import Dataset, min_quality, parse_bytes, split_conversations
from shared.dataset.folding import to_sequences
from shared.errors import DatasetError, Problem, StorageError
from shared.job_input import JobInput
from shared.storage import Storage


@dataclass
class TrainingData:
    dataset: Dataset
    train: EncodedSplit
    val: EncodedSplit
    max_seq_length: int
    fold: bool
    held_out: bool               # a validation split was asked for

    def warnings(self) -> Iterator[tuple[str, str]]:
        """(code, message) of each warning the data gives, in order."""
        for warning in self.dataset.warnings:
            yield "dataset_metadata", warning
        dropped = self.train.dropped_too_long + self.val.dropped_too_long
        if dropped:
            yield "too_long", (
                f"{len(dropped)} training pairs end beyond max_seq_length={self.max_seq_length} "
                f"tokens and are not trained or scored (first: {', '.join(dropped[:5])})")
        unfolded = self.train.unfolded_conversations + self.val.unfolded_conversations
        if unfolded:
            yield "not_folded", (
                f"{len(unfolded)} conversations could not be folded exactly with this "
                f"tokenizer and are trained pair by pair (first: {', '.join(unfolded[:5])})")

    def check_fits(self) -> None:
        """Refuse data of which nothing fits in ``max_seq_length`` (after its warnings)."""
        if not self.train.sequences:
            raise DatasetError([Problem("dataset", "no training pair fits in max_seq_length="
                                        f"{self.max_seq_length} tokens")])
        if self.held_out and not self.val.sequences:
            raise DatasetError([Problem("dataset", "no held-out pair fits in max_seq_length="
                                        f"{self.max_seq_length} tokens")])

    def summary(self) -> dict:
        tr, va = self.train, self.val
        unfolded = tr.tokens_unfolded + va.tokens_unfolded
        folded = tr.tokens + va.tokens
        return {
            "format": self.dataset.format,
            "conversations": len(self.dataset.conversations),
            "train_conversations": len({e.conversation_id for e in tr.sequences}),
            "validation_conversations": len({e.conversation_id for e in va.sequences}),
            "pairs": self.dataset.pairs_total,
            "skipped_null_targets": self.dataset.skipped_null_targets,
            "skipped_low_quality": self.dataset.skipped_low_quality,
            "train_pairs": tr.targets, "validation_pairs": va.targets,
            "dropped_too_long": len(tr.dropped_too_long) + len(va.dropped_too_long),
            "folding": {
                "enabled": self.fold,
                "sequences": len(tr.sequences) + len(va.sequences),
                "folded_pairs": sum(e.n_targets for e in tr.sequences + va.sequences if e.n_targets > 1),
                "tokens_unfolded": unfolded, "tokens_folded": folded,
                "tokens_saved_pct": round(100 * (1 - folded / unfolded), 1) if unfolded else 0.0,
                "unfolded_conversations": len(tr.unfolded_conversations) + len(va.unfolded_conversations),
            },
            "train_tokens_per_epoch": tr.tokens,
            "train_target_tokens_per_epoch": tr.target_tokens,
        }


def read_verified(storage: Storage, key: str, sha256: str, what: str) -> bytes:
    """A file of the job's from storage, checked against the sha256 it was recorded with;
    ``DatasetError`` naming ``what`` (the job input's field) when it cannot be read or changed."""
    try:
        raw = storage.get_bytes(key)
    except StorageError as exc:
        raise DatasetError([Problem(what, f"could not be read from storage: {exc}", "key")]) from exc
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise DatasetError([Problem(what, f"{key} does not match its sha256: "
                                    "the file changed after it was recorded", "sha256")])
    return raw


def prepare(job: JobInput, storage: Storage, tokenizer, *, max_bytes: int) -> TrainingData:
    """The job's dataset, verified, filtered, split and encoded; raises DatasetError."""
    ref = job.dataset
    raw = read_verified(storage, ref.key, ref.sha256, "dataset")
    dataset = min_quality(parse_bytes(raw, name=ref.key, fmt=ref.format, max_bytes=max_bytes),
                          job.data.min_quality_score)
    if not dataset.conversations:
        raise DatasetError([Problem("dataset", "no training pair is left after the minimum "
                                    f"quality filter ({job.data.min_quality_score})")])
    train_convs, val_convs = split_conversations(
        dataset.conversations, job.validation.fraction, job.validation.seed)
    sequences_of = lambda conv: to_sequences([conv], fold=job.data.fold)  # noqa: E731
    max_len = job.hyperparameters.max_seq_length
    return TrainingData(
        dataset=dataset,
        train=encode_conversations(tokenizer, train_convs, sequences_of, max_len),
        val=encode_conversations(tokenizer, val_convs, sequences_of, max_len),
        max_seq_length=max_len, fold=job.data.fold, held_out=job.validation.fraction > 0)
