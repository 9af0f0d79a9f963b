"""Datasets: the users' brightrun-lora-v4 and chat JSONL, parsed, validated, folded, split."""
from shared.dataset.chat_jsonl import parse_chat_jsonl, to_chat_jsonl
from shared.dataset.brightrun import parse_brightrun
from shared.dataset.filters import min_quality
from shared.dataset.folding import fold_conversation, fold_report, to_sequences
from shared.dataset.loading import FORMATS, load_dataset, parse_bytes
from shared.dataset.types import Conversation, Dataset, Example, Message, Sequence
from shared.dataset.split import split_conversations
from shared.dataset.stats import describe

__all__ = [
    "Conversation", "Dataset", "Example", "FORMATS", "Message", "Sequence", "describe",
    "fold_conversation", "fold_report", "load_dataset", "min_quality", "parse_brightrun",
    "parse_bytes", "parse_chat_jsonl", "split_conversations", "to_chat_jsonl", "to_sequences",
]
