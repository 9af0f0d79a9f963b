"""The public surface: a share link's read-only page, for people without an account.

``/share/<token>`` shows the job's validation report as a page, with its PDF at
``/share/<token>/report.pdf``. Nothing here needs a session; the token is the proof, and a
revoked or expired one answers 410 with a plain page that says which. Every answer is kept
out of caches and search engines, and its address never leaves in a Referer.
"""
from control.public.routes import bp

__all__ = ["bp"]
