"""How long the validation report takes to render, and how big it is.

    .venv/bin/python benchmarks/report_build.py [--runs 5]

Renders the fixture report (``tests/report_fixture.py``: a fully populated context, four
charts, four before/after examples) as HTML and as a PDF with WeasyPrint, ``--runs`` times
each after one warm-up, and prints the median and slowest seconds, the PDF's size and its
pages. A real build adds gathering the facts from the database and storage (tens of ms).
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control.services.report import render_html, render_pdf  # noqa: E402
from tests.report_fixture import sample_context  # noqa: E402


def timed(fn, runs: int) -> tuple[list[float], object]:
    fn()                                   # fonts, templates and matplotlib warm
    seconds, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - started)
    return seconds, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ctx = sample_context()
    html_s, html = timed(lambda: render_html(ctx), args.runs)
    pdf_s, pdf = timed(lambda: render_pdf(ctx), args.runs)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"HTML: median {statistics.median(html_s):.2f} s, slowest {max(html_s):.2f} s, {len(html):,} characters")
    print(f"PDF:  median {statistics.median(pdf_s):.2f} s, slowest {max(pdf_s):.2f} s, "
          f"{len(pdf):,} bytes, {pages} pages")


if __name__ == "__main__":
    main()
