"""URLs in command answers: masked for admins, hidden from everyone else.

Source URLs and the Telegram API base are the operator's configuration and may
carry secrets (`https://user:pass@…`, `?X-Amz-Credential=…&X-Amz-Signature=…`,
`?token=…`, a bot token in the path). In `/status` an admin (`ADMINS`) sees
each URL as scheme, host, port and path only — credentials and the whole query
string replaced by `***` / `?…`, secret-looking path segments by `***` — and
anyone else sees no URL at all.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HIDDEN = "‹url hidden›"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s<>\"'`]+")
# A Telegram bot token (`123456:AA…`, with or without the `bot` prefix) or a long key-like segment.
_TOKEN_SEGMENT = re.compile(r"^(?:bot)?\d{5,}:[A-Za-z0-9_-]{20,}$")
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-+=.~%]{24,}$")


def mask_url(url: str) -> str:
    """`url` with no credentials, no query string, no fragment and no key-like path segment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return HIDDEN
    if ":" in host:
        host = f"[{host}]"
    netloc = ("***@" if "@" in parts.netloc else "") + host + (f":{port}" if port else "")
    path = "/".join("***" if _secret_segment(s) else s for s in parts.path.split("/"))
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{netloc}{path}{query}"


def _secret_segment(segment: str) -> bool:
    if _TOKEN_SEGMENT.match(segment):
        return True
    return bool(_KEY_SEGMENT.match(segment)) and any(c.isdigit() for c in segment) and any(
        c.isalpha() for c in segment
    )


def mask_urls(text: str, *, reveal: bool) -> str:
    """Every URL in `text` masked (`reveal`, for admins) or replaced by `‹url hidden›`."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        trail = ""
        while url and url[-1] in ".,;:)]}":  # sentence punctuation after a URL in error text
            trail = url[-1] + trail
            url = url[:-1]
        return (mask_url(url) if reveal else HIDDEN) + trail

    return _URL.sub(one, text)
