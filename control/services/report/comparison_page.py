"""A comparison of runs (``services.comparison.compare``'s answer) as a PDF, through the
validation report's rendering: its Jinja environment and filters, its print CSS (with
``templates/comparison.css`` on top: A4 landscape, the runs' colours), its charts
(``charts.runs_overlaid``: each curve of every run on shared axes) and WeasyPrint with
nothing fetched. No Flask here."""
from __future__ import annotations

from markupsafe import Markup

from control.services.report import charts
from control.services.report.render import CSS, ENV, TEMPLATES, page_pdf

COMPARISON_CSS = Markup((TEMPLATES / "comparison.css").read_text())
# The curves drawn, each on its own chart: the key of a run's ``curves`` and the axis' label.
CURVES = (("training_loss", "training loss"), ("validation_loss", "validation loss (held-out sample)"),
          ("learning_rate", "learning rate"))
# Width and height (inches) of each chart: the two losses side by side, the learning rate
# below them across the page (an A4 landscape page's text width is about 10.5 inches).
SIZES = {"training_loss": (5.0, 2.7), "validation_loss": (5.0, 2.7), "learning_rate": (10.2, 2.1)}


def curve_charts(comparison: dict) -> dict[str, str | None]:
    """Each curve's SVG with every run on it, or None where no run has a point of it."""
    out: dict[str, str | None] = {}
    for key, label in CURVES:
        series = [(r["name"], r["curves"][key]) for r in comparison["runs"]]
        width, height = SIZES[key]
        out[key] = charts.runs_overlaid(series, ylabel=label, name=f"compare-{key.replace('_', '-')}",
                                        width_in=width, height_in=height) \
            if any(points for _, points in series) else None
    return out


def render_comparison_html(comparison: dict, *, generated_at: str, by: str) -> str:
    """The comparison as one self-contained HTML page (the PDF's source)."""
    return ENV.get_template("comparison.html").render(
        c=comparison, charts=curve_charts(comparison), css=CSS, extra_css=COMPARISON_CSS, curves=CURVES,
        colours=charts.RUN_COLOURS, generated_at=generated_at, by=by)


def render_comparison_pdf(comparison: dict, *, generated_at: str, by: str) -> bytes:
    """The comparison as an A4 landscape PDF."""
    return page_pdf(render_comparison_html(comparison, generated_at=generated_at, by=by))
