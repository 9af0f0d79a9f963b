"""Money and durations as people read them: the console's template filters and the
notifications' messages both say them this way (the validation report has its own style,
``report/render.py``); and text as a spreadsheet must show it (every CSV export)."""
from __future__ import annotations


def money(value) -> str:
    """
    >>> money(3.5), money(0.00421), money(None), money(1234.5), money(0)
    ('$3.50', '$0.0042', '—', '$1,234.50', '$0.00')
    """
    if value is None:
        return "—"
    value = float(value)
    if 0 < abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def seconds(value) -> str:
    """
    >>> seconds(5.2), seconds(75), seconds(3600 * 26), seconds(None)
    ('5 s', '1 min 15 s', '26 h 0 min', '—')
    """
    if value is None:
        return "—"
    s = int(round(float(value)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def minutes(value) -> str:
    """A duration given in minutes.

    >>> minutes(0.4), minutes(12.25), minutes(135), minutes(None)
    ('24 s', '12 min 15 s', '2 h 15 min', '—')
    """
    return "—" if value is None else seconds(float(value) * 60)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(text: str | None) -> str:
    """Text a spreadsheet shows as text, never runs: a leading ``= + - @`` (or a tab or a
    carriage return) would make it a formula, so it gets a leading ``'``.

    >>> spreadsheet_cell("=HYPERLINK(1)"), spreadsheet_cell("+1"), spreadsheet_cell("-2")
    ("'=HYPERLINK(1)", "'+1", "'-2")
    >>> spreadsheet_cell("@SUM(A1)"), spreadsheet_cell("run 1"), spreadsheet_cell(None)
    ("'@SUM(A1)", 'run 1', '')
    """
    text = text or ""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
