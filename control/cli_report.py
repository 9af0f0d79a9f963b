"""What ``pipeline train`` and ``pipeline evaluate`` print when a run ends: the training's
figures, each measure against its target, the forgetting check, and before/after examples
read back from the run's storage."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click

from shared.evaluation.report import SUITE_NAMES, read_samples
from shared.storage import Storage
from shared.storage.layout import EvaluationLayout

STATUS_TEXT = {"met": ("met", "green"), "not_met": ("not met", "red"),
               "waiting_for_review": ("waiting for people's scores", "yellow"),
               "not_measured": ("not measured", None), "informational": ("", None)}


def _num(value, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}{unit}" if abs(value) < 10 else f"{value:,.2f}{unit}"


CHANGE_WORD = {"perplexity": "lower", "forgetting": "kept", "reference_similarity": "closer",
               "emotional_intelligence": "better", "brand_voice": "", "judge": "won"}
UNIT_NOTE = {"forgetting": "kept: the adapter's accuracy as a share of the base model's",
             "reference_similarity": "closer: held-out turns whose adapter answer is nearer the reference (ties half)"}


def _change(m: dict) -> str:
    if m.get("improvement") is None:
        return ""
    text = f"{m['improvement']:.1f}% {CHANGE_WORD.get(m['id'], '')}".rstrip()
    if m.get("interval"):
        lo, hi = m["interval"]
        text += f" [{lo:.1f}, {hi:.1f}]"
    return text


def print_measures(ev: dict) -> None:
    """One line a measure: base, adapter, the change with its 95% interval, the target, the status."""
    click.echo(f"  {'measure':<48}{'n':>4}{'base':>9}{'adapter':>9}  {'change [95% interval]':<28}{'target':<9}status")
    notes = []
    for m in ev.get("measures") or []:
        label, colour = STATUS_TEXT.get(m["status"], (m["status"], None))
        percent = m["id"] in ("perplexity", "forgetting", "emotional_intelligence")
        target = f">={m['target']:g}{'%' if percent else ''}" if m.get("target") is not None else ""
        n = str(m["n"]) if m.get("n") else ""
        click.echo(f"  {m['name'][:47]:<48}{n:>4}{_num(m.get('base')):>9}{_num(m.get('adapter')):>9}  "
                   f"{_change(m):<28}{target:<9}" + click.style(label, fg=colour))
        if m["id"] in UNIT_NOTE and m.get("improvement") is not None:
            notes.append(UNIT_NOTE[m["id"]])
    for note in notes:
        click.echo(f"    {note}")
    for flag in ev.get("flags") or []:
        click.secho(f"  warning: {flag['message']}", fg="yellow")


def _wrap(label: str, text: str) -> str:
    body = textwrap.shorten(" ".join(text.split()), width=320, placeholder=" ...") or "(empty)"
    return textwrap.fill(body, width=100, initial_indent=f"    {label:<10}", subsequent_indent=" " * 14)


def print_examples(storage: Storage, layout: EvaluationLayout, root: Path, count: int = 2) -> None:
    """The first ``count`` before/after pairs: held-out turns first, then the scenarios."""
    shown = 0
    for suite in ("heldout", "ei", "custom"):
        rows = read_samples(storage, layout.samples(suite))
        for row in rows[:count - shown]:
            if shown == 0:
                click.echo(f"before / after (every answer: {root / layout.prefix / 'samples'}/)")
            click.echo(f"  [{SUITE_NAMES[suite]}: {row.id}" + (f", {row.category}" if row.category else "") + "]")
            click.echo(_wrap("client", row.prompt[-1]["content"]))
            click.echo(_wrap("base", row.base))
            click.echo(_wrap("adapter", row.adapter))
            if row.reference:
                click.echo(_wrap("reference", row.reference))
            shown += 1
        if shown >= count:
            return


def print_forgetting(storage: Storage, layout: EvaluationLayout) -> None:
    if not storage.exists(layout.summary):
        return
    f = json.loads(storage.get_bytes(layout.summary)).get("forgetting")
    if not f:
        return
    b, a = f["base"], f["adapter"]
    click.echo(f"forgetting check: {f['questions']} financial-knowledge questions, base {b['correct']}/{b['n']} "
               f"right, adapter {a['correct']}/{a['n']}: retention {f['retention_pct']}%")
    topics = ", ".join(f"{t} {100 * b['by_topic'][t]:.0f}%->{100 * a['by_topic'][t]:.0f}%" for t in b["by_topic"])
    click.echo(f"  by topic: {topics}")


def print_evaluation(storage: Storage, layout: EvaluationLayout, ev: dict, root: Path) -> None:
    """The evaluation's measures, its forgetting figure and two before/after examples."""
    suites = ", ".join(f"{v['samples']} {SUITE_NAMES[k]}" for k, v in (ev.get("suites") or {}).items())
    click.echo(f"evaluation: {suites}")
    print_measures(ev)
    print_forgetting(storage, layout)
    print_examples(storage, layout, root)
    click.echo(f"evaluation summary: {root / layout.summary}")


def print_result(out_dir: Path, storage: Storage, layout: EvaluationLayout, s: dict) -> None:
    ev = s["eval"]
    d = s["data"]
    click.echo("")
    click.echo(f"trained {s['steps']} steps on {d['train_pairs']} pairs "
               f"({d['train_conversations']} conversations), {s['train_tokens']:,} tokens, "
               f"padding {100 * s['padding_fraction']:.1f}%")
    scored = "held-out" if ev.get("split", "validation") == "validation" else \
        "training split (no held-out split: --validation-fraction 0)"
    click.echo(f"{scored}: {ev['conversations']} conversations, {ev['targets']} replies, "
               f"{ev['tokens']:,} target tokens")
    click.echo(f"  {'':10}{'loss':>10}{'perplexity':>12}")
    click.echo(f"  {'base':10}{ev['base']['loss']:>10.4f}{ev['base']['perplexity']:>12.3f}")
    click.echo(f"  {'adapter':10}{ev['trained']['loss']:>10.4f}{ev['trained']['perplexity']:>12.3f}")
    pct = ev["improvement_pct"]
    colour = "green" if pct > 0 else "red"
    click.secho(f"  perplexity {'improved' if pct > 0 else 'worsened'} by {abs(pct):.1f}%", fg=colour)
    if ev.get("measures"):
        print_evaluation(storage, layout, ev, out_dir)
    click.echo(f"adapter: {out_dir / 'adapter'}   summary: {out_dir / 'summary.json'}")
