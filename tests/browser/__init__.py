"""Browser tests: the console in Debian's Chromium against the running system."""
