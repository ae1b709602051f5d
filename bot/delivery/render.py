"""Platform-neutral pieces of an alert message; adapters add their own markup.

Everything here returns plain text: each adapter escapes it for its markup
(HTML for Telegram, Markdown for Discord) at the last step.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.models import Alert, Severity, Tone

SEVERITY_MARKER = {Severity.info: "🔵", Severity.warning: "🟠", Severity.critical: "🔴"}
TONE_LABEL = {Tone.hope: "hope", Tone.friction: "friction", Tone.neutral: "neutral"}


def safe_url(url: str | None, *, max_length: int = 2048) -> str | None:
    """The URL if it is a plain http(s) address we may link to, else None.

    Feed links are untrusted: `javascript:` and data URLs, control characters
    and whitespace (which could break out of markup) are refused.
    """
    if not url:
        return None
    url = url.strip()
    if len(url) > max_length or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def handle(alert: Alert) -> str:
    """The short id users type in `/why`."""
    return alert.id[:8]


def tone_line(alert: Alert) -> str | None:
    if alert.tone is None:
        return None
    score = f" ({alert.tone_score:+.2f})" if alert.tone_score is not None else ""
    return f"Tone: {TONE_LABEL[alert.tone]}{score}"


def watchlist_lines(alert: Alert) -> list[str]:
    """`Sector: T1, T2 — why` per watch-list sector."""
    return [f"{w.title}: {', '.join(w.tickers)} — {w.why}" for w in alert.watchlist]


def when_line(alert: Alert) -> str:
    return alert.event_time.strftime("%Y-%m-%d %H:%M UTC")


def plain_text(alert: Alert) -> str:
    """The whole alert as plain text (console, logs, digests)."""
    lines = [
        f"{SEVERITY_MARKER[alert.severity]} [{alert.severity.value.upper()}] {alert.rule_description}"
        f"  ({alert.rule_id}, #{handle(alert)})",
        alert.title,
    ]
    if alert.message:
        lines.append(alert.message)
    tl = tone_line(alert)
    if tl:
        lines.append(tl)
    if alert.url:
        lines.append(alert.url)
    lines.append(f"Source: {alert.source} · {when_line(alert)}")
    why = alert.explanation.summary()
    if why:
        lines.append(f"Why: {why}")
    if alert.watchlist:
        lines.append("Watch:")
        lines.extend("  " + line for line in watchlist_lines(alert))
    return "\n".join(lines)
