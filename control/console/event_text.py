"""One line a person can read for each event of the log (the event itself stays exportable)."""
from __future__ import annotations


def _size(n: int | None) -> str:
    """
    >>> _size(512), _size(3_500_000)
    ('512 B', '3.5 MB')
    """
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _duration(seconds: float | None) -> str:
    """
    >>> _duration(42.4), _duration(185), _duration(4000)
    ('42 s', '3 min', '1 h 6 min')
    """
    seconds = round(seconds or 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def describe(event: dict) -> str:
    """
    >>> describe({"type": "stage", "stage": "model_loading"})
    'model loading'
    >>> describe({"type": "metrics", "step": 5, "total_steps": 30, "epoch": 0.5, "loss": 2.3141, "lr": 0.00012})
    'step 5 of 30 · epoch 0.50 · loss 2.3141 · lr 1.20e-04'
    >>> describe({"type": "evaluation", "base": {"perplexity": 31.66}, "trained": {"perplexity": 21.39}, "improvement_pct": 32.5, "conversations": 3})
    'held-out (3 conversations): perplexity 31.66 → 21.39, 32.5% better'
    >>> describe({"type": "error", "error": {"type": "out_of_memory", "message": "OOM", "fix": "batch_size=2"}})
    'out_of_memory: OOM — fix: batch_size=2'
    >>> describe({"type": "heartbeat", "stage": "model_loading", "activity": "loading the base model", "elapsed_seconds": 120.3})
    'still loading the base model (2 min so far)'
    """
    kind = event.get("type")
    if kind == "stage":
        text = event.get("stage", "").replace("_", " ")
        return f"{text}: {event['message']}" if event.get("message") else text
    if kind == "metrics":
        return (f"step {event.get('step')} of {event.get('total_steps')} · epoch {event.get('epoch', 0):.2f}"
                f" · loss {event.get('loss', 0):.4f} · lr {event.get('lr', 0):.2e}")
    if kind == "checkpoint":
        return f"checkpoint at step {event.get('step')} ({event.get('reason', 'interval')})"
    if kind == "evaluation":
        base, trained = event.get("base") or {}, event.get("trained") or {}
        text = f"held-out ({event.get('conversations')} conversations): perplexity {base.get('perplexity')}"
        if trained:
            text += f" → {trained.get('perplexity')}"
        if event.get("improvement_pct") is not None:
            text += f", {event['improvement_pct']}% better"
        return text
    if kind == "artifact":
        return f"{event.get('kind')} stored ({_size(event.get('size_bytes'))})"
    if kind == "warning":
        return f"{event.get('code')}: {event.get('message')}"
    if kind == "error":
        err = event.get("error") or {}
        text = f"{err.get('type')}: {err.get('message')}"
        return f"{text} — fix: {err['fix']}" if err.get("fix") else text
    if kind == "heartbeat":
        return f"still {event.get('activity')} ({_duration(event.get('elapsed_seconds'))} so far)"
    if kind == "completed":
        return "completed"
    return kind or "?"
