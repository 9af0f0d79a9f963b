"""Security headers on every answer, pages and API alike.

The console runs no inline script and no inline style (its behaviour is in
``console/static/console.js``, its looks in ``console.css``; bar widths are SVG geometry, and
Chart.js sizes its canvas through the CSSOM, which a CSP allows), so the policy is ``'self'``
for both: injected markup can neither run script nor restyle the page. Nothing may frame
the console (``frame-ancestors 'none'`` and, for older browsers, ``X-Frame-Options``), no
answer is sniffed into another type, and the address of a page never leaves the site.
"""
from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def register(app) -> None:
    app.after_request(add_security_headers)
