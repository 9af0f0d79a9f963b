"""The validation report a business owner sends a client: a PDF (and the same page as HTML
for a share link) proving, with the evaluation's numbers, charts and before/after examples,
that the adapter trained on their conversations made the model better.

The control plane gathers a :class:`ReportContext` (``context``); ``render`` turns it into
HTML or a PDF; ``charts`` draws its SVG charts.
"""
from control.services.report.context import ReportContext
from control.services.report.render import render_html, render_page_and_pdf, render_pdf

__all__ = ["ReportContext", "render_html", "render_page_and_pdf", "render_pdf"]
