"""The validation report as a self-contained HTML page and as a PDF (WeasyPrint), both from
one Jinja template (``templates/report.html``, its print CSS ``templates/report.css``
inlined) and one :class:`ReportContext`.

No Flask here: an RQ worker renders it without an app context. The HTML page fetches
nothing (the CSS is inlined, the charts are inline SVG), so a share page shows it as is;
the PDF is the same document laid out by the CSS's ``@page`` rules. WeasyPrint is given a
URL fetcher that refuses every URL, so nothing in a report reaches the network.

The small functions below say figures the way the report says them to a business reader:
percentages with one decimal, intervals as "[28.2%, 38.5%]", money as "$0.37", dates as
"1 December 2026".
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import weasyprint
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from control.services.report import charts
from control.services.report.context import ReportContext
from shared.evaluation.report import SUITE_NAMES, Measure

TEMPLATES = Path(__file__).parent / "templates"
DASH = "—"
STATUS_TEXT = {"met": "Target met", "not_met": "Target not met", "waiting_for_review": "Awaiting review",
               "not_measured": "Not measured", "informational": "Supporting figure"}
STATUS_TONE = {"met": "ok", "not_met": "bad", "waiting_for_review": "warn", "not_measured": "muted",
               "informational": "muted"}
SCORED_BY = {"computed": "computed from both models' answers", "model": "scored by an automatic judge (a model)",
             "people": "scored by people, blind"}
# The verdict box: its label, its tone, and the plain-language sentence that opens it.
VERDICTS = {
    "approved": ("Approved for delivery", "ok", "This adapter is ready for delivery."),
    "rejected": ("Not approved", "bad", "This adapter is not ready for delivery: a reviewer rejected it."),
    "not_met": ("Not approved", "bad", "This adapter is not ready for delivery: at least one target is not met."),
    "waiting_for_review": ("Awaiting review", "warn",
                           "This adapter is not ready for delivery yet: it waits for people's review."),
}
WINNERS = {"adapter": "The adapter's answer was preferred", "base": "The base model's answer was preferred",
           "tie": "Neither answer was preferred (a tie)"}
# An improvement below zero reads as its opposite: "12.0% higher", not "-12.0% lower".
OPPOSITES = {"% lower": "% higher", "% better": "% worse"}


# ---------------------------------------------------------------------- figures, for people
def num(value, digits: int = 4) -> str:
    """A figure with about four significant digits; "—" for none.

    >>> num(31.6629), num(0.4461), num(None), num(1583), num(12345.678)
    ('31.66', '0.4461', '—', '1,583', '12,345.7')
    """
    if value is None:
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    value = float(value)
    return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.1f}"


def pct(value, digits: int = 1) -> str:
    """A percentage with one decimal.

    >>> pct(32.4871), pct(None), pct(100)
    ('32.5%', '—', '100.0%')
    """
    return DASH if value is None else f"{float(value):.{digits}f}%"


def interval(bounds, percent: bool = True) -> str:
    """A 95% interval in brackets.

    >>> interval([28.21, 38.5]), interval([4.1, 4.62], percent=False), interval(None)
    ('[28.2%, 38.5%]', '[4.10, 4.62]', '—')
    """
    if not bounds:
        return DASH
    lo, hi = bounds
    return f"[{pct(lo)}, {pct(hi)}]" if percent else f"[{lo:.2f}, {hi:.2f}]"


def score(value) -> str:
    """A mean score of 5, with two decimals.

    >>> score(4.3), score(None)
    ('4.30', '—')
    """
    return DASH if value is None else f"{float(value):.2f}"


def money(value) -> str:
    """Dollars and cents.

    >>> money(0.3712), money(1234.5), money(None)
    ('$0.37', '$1,234.50', '—')
    """
    return DASH if value is None else f"${float(value):,.2f}"


def minutes(value) -> str:
    """A duration in minutes as hours and minutes.

    >>> minutes(47.6), minutes(135), minutes(None)
    ('48 min', '2 h 15 min', '—')
    """
    if value is None:
        return DASH
    total = round(float(value))
    return f"{total} min" if total < 60 else f"{total // 60} h {total % 60} min"


def when(iso: str | None, *, time: bool = True) -> str:
    """An ISO time as a reader writes it, in UTC.

    >>> when("2026-12-01T16:23:41Z"), when("2026-12-01T16:23:41+00:00", time=False), when(None)
    ('1 Dec 2026, 16:23 UTC', '1 December 2026', '—')
    """
    if not iso:
        return DASH
    t = datetime.fromisoformat(iso)
    return f"{t.day} {t:%b %Y, %H:%M} UTC" if time else f"{t.day} {t:%B %Y}"


def seconds(value) -> str:
    """
    >>> seconds(1104.2), seconds(14.3), seconds(None)
    ('18 min 24 s', '14 s', '—')
    """
    if value is None:
        return DASH
    total = round(float(value))
    return f"{total} s" if total < 60 else f"{total // 60} min {total % 60} s"


def change(m: Measure, *, with_interval: bool = True) -> str | None:
    """A measure's improvement in its own words, with its 95% interval.

    >>> change(Measure(id="perplexity", name="p", unit="u", improvement=32.48, improvement_unit="% lower",
    ...                interval=[28.2, 38.5], status="met"))
    '32.5% lower, 95% interval [28.2%, 38.5%]'
    >>> change(Measure(id="perplexity", name="p", unit="u", improvement=-12.0, improvement_unit="% lower",
    ...                interval=[-20.1, -3.0], status="not_met"))
    '12.0% higher, 95% interval [3.0%, 20.1%]'
    """
    value, unit = m.improvement, m.improvement_unit or ""
    if value is None:
        return None
    bounds = m.interval
    if value < 0 and unit in OPPOSITES:
        value, unit = -value, OPPOSITES[unit]
        bounds = sorted(-x for x in bounds) if bounds else None
    text = f"{value:.1f}{'' if unit.startswith('%') else ' '}{unit}".rstrip()
    if bounds and with_interval:
        text += f", 95% interval {interval(bounds, percent=unit.startswith('%'))}"
    return text


def figures(m: Measure) -> str | None:
    """Base and adapter, the way they moved.

    >>> figures(Measure(id="perplexity", name="p", unit="u", base=31.662, adapter=21.387, status="met"))
    '31.66 → 21.39'
    >>> figures(Measure(id="forgetting", name="f", unit="% of questions right", base=82.0, adapter=80.0,
    ...                 status="met"))
    '82.0% → 80.0%'
    """
    if m.base is None and m.adapter is None:
        return None
    say = pct if m.unit.startswith("%") else num
    return f"adapter {say(m.adapter)}" if m.base is None else f"{say(m.base)} → {say(m.adapter)}"


def headline(m: Measure) -> str:
    """A measure in one plain sentence for a business reader, before its target."""
    n = f"{m.n:,}" if m.n is not None else "the"
    if m.status == "waiting_for_review":
        return {"emotional_intelligence": "People have not yet scored the answers to the emotionally "
                                          "difficult client situations; this result waits for their blind scores.",
                "brand_voice": "People have not yet scored the adapter's answers against the brand-voice "
                               "rubric; this result waits for their scores."}.get(
            m.id, f"{m.name}: waits for people's scores.")
    if m.improvement is None and m.adapter is None:
        return f"{m.name} was not measured in this run." + (f" {m.note}" if m.note else "")
    said = change(m, with_interval=False) or ""
    sentences = {
        "perplexity": f"On {n} conversations held back from training, the adapter predicts your "
                      f"team's real replies better than the base model: its perplexity (how surprised "
                      f"it is by them) is {said}.",
        "emotional_intelligence": f"People scoring blind rated the adapter's answers to {n} emotionally "
                                  f"difficult client situations {said} than the base model's "
                                  f"({figures(m)} of 5).",
        "forgetting": f"The adapter kept {pct(m.improvement)} of the base model's financial knowledge "
                      f"({pct(m.adapter)} of {n} questions right, against {pct(m.base)}).",
        "brand_voice": f"People rated {n} of the adapter's answers {num(m.adapter)} of 5 on average "
                       f"against the brand-voice rubric.",
        "reference_similarity": f"Supporting figure: on {pct(m.improvement)} of {n} held-out turns the "
                                f"adapter's answer is closer to the reply your team wrote than the base model's.",
        "judge": f"Supporting figure: an automatic judge (a model, not people) preferred the adapter's "
                 f"answer in {pct(m.improvement)} of {n} pairs.",
    }
    return sentences.get(m.id, f"{m.name}: {figures(m) or said}.")


def verdict(gate) -> dict:
    """The verdict box: label, tone (ok, bad, warn) and its opening sentence."""
    label, tone, sentence = VERDICTS[gate.verdict]
    return {"label": label, "tone": tone, "sentence": sentence}


def flat(value) -> str:
    """A statistics or configuration value on one line.

    >>> flat({"1": 2, "5": 40}), flat(["q_proj", "v_proj"]), flat(None), flat(2e-4), flat(True)
    ('1: 2, 5: 40', 'q_proj, v_proj', '—', '0.0002', 'yes')
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {flat(v)}" for k, v in value.items()) or DASH
    if isinstance(value, list | tuple):
        return ", ".join(flat(v) for v in value) or DASH
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else num(value, 6)
    return num(value) if isinstance(value, int) else str(value)


def words(key: str) -> str:
    """
    >>> words("gradient_accumulation_steps")
    'Gradient accumulation steps'
    """
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------- the document
def _charts(ctx: ReportContext) -> dict[str, str | None]:
    """Each chart's SVG, or None where the context has nothing to draw (the template says why)."""
    brand = ctx.reviews.brand or {}
    return {
        "loss": charts.loss_curve(ctx.metrics) if any(
            p.training_loss is not None or p.validation_loss is not None for p in ctx.metrics) else None,
        "targets": charts.measures_against_targets(ctx.measures) if any(
            m.target is not None for m in ctx.measures) else None,
        "forgetting": charts.forgetting_by_topic(ctx.forgetting) if ctx.forgetting and (
            (ctx.forgetting.get("base") or {}).get("by_topic")) else None,
        "brand": charts.brand_voice_by_characteristic(brand["by_characteristic"]) if brand.get(
            "by_characteristic") else None,
    }


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, pct=pct, score=score, interval=interval, money=money, minutes=minutes, when=when,
                       seconds=seconds, flat=flat, words=words)
    env.globals.update(change=change, figures=figures, headline=headline, verdict=verdict,
                       STATUS_TEXT=STATUS_TEXT, STATUS_TONE=STATUS_TONE, SCORED_BY=SCORED_BY,
                       WINNERS=WINNERS, SUITE_NAMES=SUITE_NAMES)
    return env


ENV = _environment()
CSS = Markup((TEMPLATES / "report.css").read_text())


def _page(ctx: ReportContext, charts: dict[str, str | None], pdf_url: str | None) -> str:
    examples = sorted(ctx.examples, key=lambda e: {"adapter": 0, "tie": 1, "base": 2}[e.winner])
    return ENV.get_template("report.html").render(
        ctx=ctx, charts=charts, css=CSS, pdf_url=pdf_url, examples=examples,
        base_won=[e for e in ctx.examples if e.winner == "base"],
        targeted=[m for m in ctx.measures if m.target is not None],
        supporting=[m for m in ctx.measures if m.target is None])


def _pdf(page: str) -> bytes:
    refuse_every_url = weasyprint.URLFetcher(allowed_protocols=())   # a report fetches nothing
    return weasyprint.HTML(string=page, base_url=str(TEMPLATES), url_fetcher=refuse_every_url).write_pdf()


def page_pdf(page: str) -> bytes:
    """Another page of these templates (a comparison of runs) as a PDF, by the same rules:
    laid out by its own CSS, nothing fetched."""
    return _pdf(page)


def render_html(ctx: ReportContext, *, pdf_url: str | None = None) -> str:
    """The report as one self-contained HTML page; with ``pdf_url``, a link to the PDF at its top."""
    return _page(ctx, _charts(ctx), pdf_url)


def render_pdf(ctx: ReportContext) -> bytes:
    """The report as an A4 PDF: the same document, laid out by its print CSS."""
    return _pdf(_page(ctx, _charts(ctx), None))


def render_page_and_pdf(ctx: ReportContext, *, pdf_url: str) -> tuple[str, bytes]:
    """Both at once, the charts drawn once: the page (linking ``pdf_url``) and the PDF."""
    charts = _charts(ctx)
    return _page(ctx, charts, pdf_url), _pdf(_page(ctx, charts, None))
