"""Sequences to token ids with the model's own chat template, loss on assistant targets only.

Each trained message's span is found by rendering the conversation up to it: the text
between ``render(messages[:i], add_generation_prompt=True)`` and ``render(messages[:i+1])``
is the reply (with its end-of-turn marker), and every token starting inside it is
trained. This needs a template whose renderings of a conversation's prefixes are prefixes
of each other; templates that rewrite earlier turns are refused with a clear message.

Folded sequences are checked at the token level: each target's standalone tokenization
must equal the folded sequence's tokens up to that target, or the conversation is trained
unfolded.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.dataset.folding import single
from shared.dataset.types import Conversation, Sequence
from shared.errors import ConfigError, Problem


@dataclass(frozen=True)
class Encoded:
    input_ids: tuple[int, ...]
    trained: tuple[bool, ...]      # token i carries loss (predicted from position i-1)
    conversation_id: str
    example_ids: tuple[str, ...]

    @property
    def n_targets(self) -> int:
        return len(self.example_ids)

    @property
    def target_tokens(self) -> int:
        return sum(self.trained)

    def __len__(self) -> int:
        return len(self.input_ids)


def render(tokenizer, messages, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template([m.to_dict() for m in messages], tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def _spans(tokenizer, seq: Sequence) -> tuple[str, list[tuple[int, int]]]:
    full = render(tokenizer, seq.messages)
    spans = []
    for i, trained in enumerate(seq.trained):
        if not trained:
            continue
        before = render(tokenizer, seq.messages[:i], add_generation_prompt=True)
        upto = render(tokenizer, seq.messages[:i + 1])
        if not (upto.startswith(before) and full.startswith(upto)):
            if sum(seq.trained) > 1:
                # Rewrites earlier turns (e.g. strips reasoning): train these pairs unfolded.
                raise FoldingNotExact(seq.conversation_id)
            raise ConfigError([Problem(
                "base_model", "its chat template does not render a reply as a continuation of "
                "its prompt, so the reply's tokens cannot be located for the loss")],
                fix="Use a chat or instruct model whose template renders turns in order.")
        spans.append((len(before), len(upto)))
    return full, spans


def encode(tokenizer, seq: Sequence, max_length: int) -> tuple[Encoded | None, list[str], int]:
    """Token ids and loss mask of one sequence, cut after the last target that fits.

    Returns the encoding (None if no target fits), the ids of targets dropped because
    they end beyond ``max_length``, and the tokens the pair-by-pair form would process: each
    target's standalone length is where it ends here, checked equal below.
    """
    full, spans = _spans(tokenizer, seq)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    trained = [False] * len(ids)
    ends = []  # token index one past each target's last token
    t = 0
    for start, stop in spans:
        while t < len(ids) and offsets[t][0] < start:
            t += 1
        while t < len(ids) and offsets[t][0] < stop:
            trained[t] = True
            t += 1
        ends.append(t)
    if len(spans) > 1:
        for (start, stop), end in zip(spans[:-1], ends[:-1]):
            alone = tokenizer(full[:stop], add_special_tokens=False)["input_ids"]
            if list(alone) != list(ids[:end]):
                raise FoldingNotExact(seq.conversation_id)
    fitting = [i for i, end in enumerate(ends) if end <= max_length]
    dropped = [seq.example_ids[i] for i in range(len(ends)) if ends[i] > max_length]
    if not fitting:
        return None, dropped, sum(ends)
    cut = ends[fitting[-1]]
    # Targets are in order, so those that fit are a prefix of them.
    return Encoded(tuple(ids[:cut]), tuple(trained[:cut]), seq.conversation_id,
                   seq.example_ids[:len(fitting)]), dropped, sum(ends)


class FoldingNotExact(Exception):
    def __init__(self, conversation_id):
        super().__init__(conversation_id)
        self.conversation_id = conversation_id


@dataclass
class EncodedSplit:
    sequences: list[Encoded]
    dropped_too_long: list[str]
    unfolded_conversations: list[str]   # folding refused at the token level
    tokens_unfolded: int                # what the pair-expanded form would process
    targets: int

    @property
    def tokens(self) -> int:
        return sum(len(e) for e in self.sequences)

    @property
    def target_tokens(self) -> int:
        return sum(e.target_tokens for e in self.sequences)


def encode_conversations(tokenizer, conversations: list[Conversation], sequences_of,
                         max_length: int) -> EncodedSplit:
    """Encode each conversation's sequences (``sequences_of(conv)``), falling back to the
    unfolded form for any conversation whose folding is not exact at the token level."""
    out: list[Encoded] = []
    dropped: list[str] = []
    unfolded: list[str] = []
    tokens_unfolded = 0
    for conv in conversations:
        seqs = sequences_of(conv)
        try:
            encoded = [encode(tokenizer, s, max_length) for s in seqs]
        except FoldingNotExact:
            unfolded.append(conv.id)
            encoded = [encode(tokenizer, single(e), max_length) for e in conv.examples]
        for enc, drop, pair_tokens in encoded:
            dropped.extend(drop)
            tokens_unfolded += pair_tokens
            if enc is not None:
                out.append(enc)
    return EncodedSplit(out, dropped, unfolded, tokens_unfolded,
                        targets=sum(e.n_targets for e in out))
