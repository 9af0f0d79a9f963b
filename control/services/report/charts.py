"""The validation report's four charts, each a pure function from a part of the report's
context to an ``<svg>`` element to inline in the HTML (and so in the PDF).

Drawn with matplotlib's SVG backend on a ``Figure`` of its own (no pyplot, no global
backend), text kept as text (``svg.fonttype: none``) so the SVG stays small and selectable,
ids salted per chart so several charts can share one page. They are made to survive print:
labelled axes, the target drawn as a line, the base model light grey and hatched against
the adapter's solid accent, so the two stay apart in greyscale; sized for an A4 page.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from control.services.report.context import MetricPoint
from shared.evaluation import targets
from shared.evaluation.report import Measure

ACCENT = "#1f4e79"        # the report's one accent colour: the adapter
BASE = "#d0d0d0"          # the base model: light grey, hatched
INK = "#222222"
MUTED = "#777777"
WIDTH_IN = 6.5            # an A4 page's text width (17 cm) with a little room
STYLE = {
    "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 8.5,
    "axes.edgecolor": MUTED, "axes.labelcolor": INK, "axes.titlesize": 9, "axes.titleweight": "bold",
    "axes.spines.top": False, "axes.spines.right": False, "xtick.color": INK, "ytick.color": INK,
    "legend.frameon": False, "hatch.color": "#6f6f6f", "hatch.linewidth": 0.6,
}
# What each target is measured in, on its axis.
AXIS = {"perplexity": "% lower perplexity than the base model",
        "emotional_intelligence": "% better than the base model (people's scores)",
        "forgetting": "% of the base model's accuracy kept",
        "brand_voice": "average score of 5"}
# An element's id and the references to it (clip paths, reused markers), to prefix per chart.
_ID = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')
WAITING = {"waiting_for_review": "waiting for people's scores", "not_measured": "not measured in this run"}


def _plain(text: str) -> str:
    """User text for a matplotlib label: a dollar sign stays a dollar sign, not mathtext.

    >>> _plain("Save $50 a month, $600 a year")
    'Save \\\\$50 a month, \\\\$600 a year'
    """
    return str(text).replace("$", r"\$")


def _label(key: str) -> str:
    """A topic or characteristic key as words.

    >>> _label("budgeting_debt"), _label("Taxes")
    ('Budgeting debt', 'Taxes')
    """
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _svg(fig: Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no metadata, and every id
    prefixed with ``name`` (matplotlib numbers its groups per figure: ``line2d_1`` would repeat)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"report-{name}", "svg.fonttype": "none"}):
        FigureCanvasSVG(fig).print_svg(buffer, metadata={"Date": None, "Creator": None, "Format": None,
                                                         "Type": None})
    svg = buffer.getvalue()
    svg = _ID.sub(lambda m: f'{m[1]}{name}-{m[2]}', svg[svg.index("<svg"):])   # ids unique on the page
    return svg.replace("<svg ", f'<svg class="chart chart-{name}" role="img" ', 1).strip()


def _figure(height_in: float) -> Figure:
    """A figure the page's width; called inside ``rc_context(STYLE)`` so the style applies."""
    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def loss_curve(metrics: Sequence[MetricPoint]) -> str:
    """Training loss at every step and validation loss where it was measured, against the step."""
    train = [(p.step, p.training_loss) for p in metrics if p.training_loss is not None]
    valid = [(p.step, p.validation_loss) for p in metrics if p.validation_loss is not None]
    if not train and not valid:
        raise ValueError("loss_curve: the metrics have no training or validation loss to draw")
    with matplotlib.rc_context(STYLE):
        fig = _figure(2.7)
        ax = fig.add_subplot()
        if train:
            ax.plot(*zip(*train), color=ACCENT, linewidth=1.4, label="training loss")
        if valid:
            ax.plot(*zip(*valid), color=INK, linewidth=1.2, linestyle="--", marker="s", markersize=4,
                    markerfacecolor="white", label="validation loss (held-out conversations)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss (lower is better)")
        ax.grid(axis="y", color="#e4e4e4", linewidth=0.6)
        ax.legend(loc="upper right")
        return _svg(fig, "loss")


# One colour and one line style per run of a comparison (the console's compare.js uses the same
# colours): the styles and markers keep the runs apart in greyscale.
RUN_COLOURS = ("#1f4e79", "#c2410c", "#15803d", "#7e22ce")
RUN_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def runs_overlaid(series: Sequence[tuple[str, Sequence[Sequence[float]]]], *, ylabel: str, name: str,
                  height_in: float = 2.5, width_in: float = WIDTH_IN) -> str:
    """Several runs' curve on shared axes, one colour, line style and marker per run:
    ``series`` is (run name, [[step, value], ...]) in the runs' order; a run without points
    is named in the legend as such."""
    if not any(points for _, points in series):
        raise ValueError(f"runs_overlaid: no run has a point of {ylabel!r} to draw")
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        ax = fig.add_subplot()
        for i, (label, points) in enumerate(series):
            style, marker = RUN_STYLES[i % len(RUN_STYLES)]
            colour = RUN_COLOURS[i % len(RUN_COLOURS)]
            if not points:
                ax.plot([], [], color=colour, linestyle=style, label=f"{_plain(label)} (no points)")
                continue
            xs, ys = zip(*((p[0], p[1]) for p in points))
            ax.plot(xs, ys, color=colour, linestyle=style, linewidth=1.4, marker=marker,
                    markevery=max(1, len(xs) // 8), markersize=3.5, label=_plain(label))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(_plain(ylabel))
        ax.grid(axis="y", color="#e4e4e4", linewidth=0.6)
        ax.legend(loc="best", fontsize=7.5)
        return _svg(fig, name)

def _target_value(m: Measure) -> tuple[float | None, list[float] | None]:
    """The figure a measure's target is set on, and its 95% interval: the improvement, or for
    brand voice the adapter's average score (its improvement is a share of the top score)."""
    if m.id == "brand_voice":
        return m.adapter, None
    return m.improvement, m.interval


def measures_against_targets(measures: Sequence[Measure]) -> str:
    """One row per measure with a target: the adapter's result, its 95% interval as whiskers,
    the target as a dashed line; a measure not scored yet says so in its row."""
    rows = [m for m in measures if m.target is not None]
    if not rows:
        raise ValueError("measures_against_targets: no measure has a target to draw")
    with matplotlib.rc_context(STYLE):
        fig = _figure(0.2 + 0.82 * len(rows))
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, m in zip(axes, rows):
            _target_row(ax, m)
        return _svg(fig, "targets")


def _target_row(ax, m: Measure) -> None:
    value, bounds = _target_value(m)
    percent = m.id != "brand_voice"
    seen = [x for x in (value, *(bounds or ())) if x is not None]
    floor, top = (min([0.0, *seen]), max([m.target * 1.35, *seen]) * 1.08) if percent else (1.0, 5.0)
    ax.set_xlim(floor, top)
    ax.set_ylim(-0.45, 0.85)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_title(_plain(m.name), loc="left", fontsize=8.5, pad=2)
    ax.set_xlabel(AXIS.get(m.id, _plain(m.improvement_unit or m.unit)), fontsize=7.5, labelpad=1)
    ax.tick_params(axis="x", labelsize=7.5)
    ax.axvline(m.target, color=INK, linestyle="--", linewidth=1.1)
    ax.annotate(f"target {m.target:g}{'%' if percent else ''}", (m.target, 0.82), xytext=(3, 0),
                textcoords="offset points", fontsize=7, va="top", ha="left", color=INK,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    if value is None:
        ax.text(0.5, 0.3, WAITING.get(m.status, "no result"), transform=ax.transAxes, ha="center",
                va="center", fontsize=8, style="italic", color=MUTED)
        return
    origin = 0.0 if percent else floor      # a bar grows from no change (or the scale's bottom)
    ax.barh([0], [value - origin], left=origin, height=0.36, color=ACCENT)
    if bounds:
        ax.errorbar([value], [0], xerr=[[value - bounds[0]], [bounds[1] - value]], fmt="none",
                    ecolor=INK, elinewidth=1, capsize=3.5)
    verdict = {"met": "met", "not_met": "not met"}.get(m.status, "")
    shown = f"{value:.1f}%" if percent else f"{value:.2f}"
    ax.annotate(f"{shown}  {verdict}".strip(), (max(*seen, origin), 0), xytext=(6, 0), textcoords="offset points",
                va="center", fontsize=8, fontweight="bold")


def forgetting_by_topic(forgetting: dict) -> str:
    """Accuracy on the financial-knowledge questions by topic, base beside adapter, with the
    target per topic (95% of the base model's accuracy) drawn as a line over the adapter's bar."""
    base = (forgetting.get("base") or {}).get("by_topic") or {}
    adapter = (forgetting.get("adapter") or {}).get("by_topic") or {}
    topics = sorted(set(base) | set(adapter))
    if not topics:
        raise ValueError("forgetting_by_topic: the forgetting check has no accuracy by topic")
    with matplotlib.rc_context(STYLE):
        fig = _figure(2.6)
        ax = fig.add_subplot()
        xs = range(len(topics))
        b = [None if base.get(t) is None else 100 * base[t] for t in topics]
        a = [None if adapter.get(t) is None else 100 * adapter[t] for t in topics]
        ax.bar([x - 0.19 for x in xs], [v or 0 for v in b], width=0.36, color=BASE, hatch="///",
               edgecolor="#6f6f6f", linewidth=0.6, label="base model")
        ax.bar([x + 0.19 for x in xs], [v or 0 for v in a], width=0.36, color=ACCENT, label="adapter")
        targets = [(x, 0.95 * v) for x, v in zip(xs, b) if v is not None]
        for i, (x, value) in enumerate(targets):    # a white underlay keeps the dashes visible on the dark bar
            ax.hlines(value, x - 0.02, x + 0.40, colors="white", linewidth=3)
            ax.hlines(value, x - 0.02, x + 0.40, colors=INK, linestyles="--", linewidth=1.2,
                      label="95% of the base model's accuracy" if i == 0 else None)
        for x, bv, av in zip(xs, b, a):
            for dx, v, weight in ((-0.19, bv, "normal"), (0.19, av, "bold")):
                ax.annotate("—" if v is None else f"{v:.0f}%", (x + dx, v or 0), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=7, fontweight=weight)
        ax.set_xticks(list(xs), [_plain(_label(t)) for t in topics])
        ax.set_ylim(0, 112)
        ax.set_ylabel("% of questions right")
        ax.grid(axis="y", color="#e4e4e4", linewidth=0.6)
        ax.set_axisbelow(True)
        fig.legend(loc="outside lower center", ncols=3)
        return _svg(fig, "forgetting")


def brand_voice_by_characteristic(by_characteristic: Sequence[dict], *, target: float = targets.BRAND_VOICE_AVERAGE,
                                  flag_below: float = 3.0) -> str:
    """The adapter's mean score on each brand-voice characteristic (1 to 5), the target
    average as a dashed line and the flag threshold as a dotted one."""
    rows = [(c.get("name") or _label(c.get("key", "?")), c.get("mean")) for c in by_characteristic]
    if not rows:
        raise ValueError("brand_voice_by_characteristic: no characteristic was scored")
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(1.7, 0.55 + 0.26 * len(rows)))
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        means = [m if m is not None else 1.0 for _, m in rows]
        ax.barh(ys, [m - 1 for m in means], left=1, height=0.6, color=ACCENT, label="adapter's mean score")
        ax.axvline(target, color=INK, linestyle="--", linewidth=1.1, label=f"target average {target:g}")
        ax.axvline(flag_below, color=MUTED, linestyle=":", linewidth=1.1, label=f"answers under {flag_below:g} are flagged")
        for y, (_, m) in zip(ys, rows):
            ax.annotate("not scored" if m is None else f"{m:.2f}", (5.08, y), va="center", fontsize=7.5)
        ax.set_yticks(ys, [_plain(name) for name, _ in rows])
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(1, 5.45)
        ax.set_xticks([1, 2, 3, 4, 5])
        ax.set_xlabel("mean score of 5 (people's scores of the adapter's answers)")
        fig.legend(loc="outside lower center", ncols=3)
        return _svg(fig, "brand")
