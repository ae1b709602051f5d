"""Telegram HTML for alerts, digests and command answers.

Every piece of feed text goes through `esc` (html.escape) before it meets a
tag, so a headline with `<b>`, `&` or a fake `<a href>` shows as text. Links
are made only from http(s) URLs, with the URL attribute-escaped. Messages are
built as lists of lines, each line well-formed on its own, and `split_lines`
packs them into chunks under Telegram's 4096-character limit, cutting only
between lines (or, for one monster line, between characters outside any tag
or entity).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from bot.commands.reply import Line, Reply, Span
from bot.delivery.render import SEVERITY_MARKER, TONE_LABEL, handle, when_line
from bot.delivery.render import safe_url as shared_safe_url
from bot.models import Alert

MESSAGE_LIMIT = 4096  # Telegram's limit per message (UTF-16 code units of text)
MAX_TITLE = 1000  # characters of a headline shown
MAX_MESSAGE = 1500  # characters of a rule's message shown
MAX_URL = 2000  # longer URLs are not linked

_TAG = re.compile(r"<[^>]*>")


def esc(text: object) -> str:
    """Escape text for Telegram HTML (`<`, `>`, `&`; quotes too, harmlessly)."""
    return html.escape(str(text), quote=True)


def clip(text: str, limit: int) -> str:
    """Whitespace collapsed, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe_url(url: str | None) -> str | None:
    """A linkable http(s) URL within this platform's length limit, else None."""
    return shared_safe_url(url, max_length=MAX_URL)


def link(text: str, url: str | None) -> str:
    """`text` as a link to `url` when that is a safe http(s) URL; escaped text otherwise."""
    target = safe_url(url)
    if target is None:
        return esc(text)
    return f'<a href="{esc(target)}">{esc(text)}</a>'


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


# ---- alerts ---------------------------------------------------------------------


def headline_line(alert: Alert) -> str:
    return f"{SEVERITY_MARKER[alert.severity]} <b>{esc(alert.severity.value.upper())}</b> · <b>{esc(alert.rule_description)}</b>"


def tone_text(alert: Alert) -> str | None:
    if alert.tone is None:
        return None
    score = f" ({alert.tone_score:+.2f})" if alert.tone_score is not None else ""
    return f"Tone: <b>{esc(TONE_LABEL[alert.tone])}</b>{esc(score)}"


def watch_lines(alert: Alert) -> list[str]:
    """One line per watch-list sector: tickers, then why it matters."""
    lines: list[str] = []
    for item in alert.watchlist:
        tickers = ", ".join(f"<code>{esc(t)}</code>" for t in item.tickers)
        lines.append(f"• <b>{esc(item.title)}</b>: {tickers}")
        if item.why:
            lines.append(f"  <i>{esc(clip(item.why, 400))}</i>")
    return lines


def alert_lines(alert: Alert) -> list[str]:
    """The alert message as well-formed HTML lines."""
    lines = [headline_line(alert), link(clip(alert.title, MAX_TITLE) or "(no title)", alert.url)]
    if alert.message:
        parts = alert.message[:MAX_MESSAGE].splitlines()
        lines.extend(esc(clip(part, MAX_MESSAGE)) for part in parts if part.strip())
    tone = tone_text(alert)
    if tone:
        lines.append(tone)
    lines.append(f"Source: {esc(alert.source)} · {esc(when_line(alert))}")
    if alert.watchlist:
        lines.append("Watch:")
        lines.extend(watch_lines(alert))
    lines.append(f"<i>#{esc(handle(alert))} · rule {esc(alert.rule_id)}</i>")
    return lines


def render_alert(alert: Alert, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The alert as one or more HTML messages (usually one)."""
    return split_lines(alert_lines(alert), limit=limit)


def alert_summary_line(alert: Alert) -> str:
    """One line per alert in digests and /recent: marker, time, rule, linked headline, handle."""
    return (
        f"{SEVERITY_MARKER[alert.severity]} {esc(alert.event_time.strftime('%m-%d %H:%M'))} "
        f"<b>{esc(alert.rule_description)}</b>: {link(clip(alert.title, 300) or '(no title)', alert.url)} "
        f"<i>#{esc(handle(alert))}</i>"
    )


def render_digest(alerts: Sequence[Alert], *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Alerts held during quiet hours, as one message (split when long)."""
    n = len(alerts)
    lines = [f"🌙 <b>Quiet hours are over: {n} alert{'s' if n != 1 else ''} held</b>"]
    for alert in alerts:
        lines.append(alert_summary_line(alert))
        if alert.tickers:
            lines.append(
                "  Watch: " + ", ".join(f"<code>{esc(t)}</code>" for t in alert.tickers[:12])
            )
    lines.append("<i>/why &lt;#handle&gt; explains any of them.</i>")
    return split_lines(lines, limit=limit)


# ---- splitting ------------------------------------------------------------------


def split_lines(lines: Iterable[str], *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pack well-formed HTML lines into messages of at most `limit` UTF-16 units.

    Cuts fall between lines; a single line longer than `limit` loses its tags
    and is cut between characters, never inside an entity such as `&amp;`.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        pieces = [line] if utf16_len(line) <= limit else _cut_long_line(line, limit)
        for piece in pieces:
            extra = utf16_len(piece) + (1 if current else 0)
            if current and size + extra > limit:
                chunks.append("\n".join(current))
                current, size = [], 0
                extra = utf16_len(piece)
            current.append(piece)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return chunks or [""]


def _cut_long_line(line: str, limit: int) -> list[str]:
    text = _TAG.sub("", line)  # escaped text stays escaped: no tag survives, entities do
    out: list[str] = []
    while text:
        if utf16_len(text) <= limit:
            out.append(text)
            break
        cut = _prefix_len(text, limit)
        amp = text.rfind("&", max(0, cut - 10), cut)
        if amp != -1 and ";" not in text[amp:cut]:
            cut = amp  # do not split an entity
        cut = max(cut, 1)
        out.append(text[:cut])
        text = text[cut:]
    return out


def _prefix_len(text: str, limit: int) -> int:
    """The longest prefix (in characters) that fits in `limit` UTF-16 units."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def plain(html_text: str) -> str:
    """HTML back to plain text (for the can't-parse fallback and tests)."""
    return html.unescape(_TAG.sub("", html_text))


def explain_lines(alert: Alert) -> list[str]:
    """/why: which rule fired, on which words or price move, with the tone terms and weights."""
    ex = alert.explanation
    lines = [
        f"<b>Why #{esc(handle(alert))}</b>",
        f"Rule <code>{esc(alert.rule_id)}</code>: {esc(alert.rule_description)} ({esc(alert.severity.value)})",
        "Headline: " + link(clip(alert.title, MAX_TITLE) or "(no title)", alert.url),
    ]
    if ex.matched_terms:
        lines.append(
            "Matched: "
            + ", ".join(f"<code>{esc(clip(t, 80))}</code>" for t in ex.matched_terms[:30])
        )
    if ex.price_detail:
        lines.append("Price: " + esc(clip(ex.price_detail, 300)))
    if alert.tone is not None:
        tone = tone_text(alert) or ""
        if ex.tone_terms:
            terms = ", ".join(
                f"<code>{esc(clip(t, 60))}</code> ({w:+.2f})" for t, w in ex.tone_terms[:30]
            )
            tone += f" from {terms}"
        lines.append(tone)
    elif ex.tone_terms:
        lines.append(
            "Tone terms: "
            + ", ".join(f"<code>{esc(t)}</code> ({w:+.2f})" for t, w in ex.tone_terms[:30])
        )
    if ex.parts:
        lines.append("Confirmed by: " + " + ".join(f"<code>{esc(p)}</code>" for p in ex.parts))
    lines.append(f"Source: {esc(alert.source)} · {esc(when_line(alert))}")
    if alert.watchlist:
        lines.append(
            "Watch: "
            + "; ".join(f"{esc(w.title)} ({esc(', '.join(w.tickers))})" for w in alert.watchlist)
        )
    return lines


# ---- command replies ------------------------------------------------------------


def span_html(span: Span) -> str:
    """One span of a command reply as Telegram HTML (text always escaped)."""
    if span.kind == "code":
        return f"<code>{esc(span.text)}</code>"
    if span.kind == "bold":
        return f"<b>{esc(span.text)}</b>"
    if span.kind == "italic":
        return f"<i>{esc(span.text)}</i>"
    if span.kind == "time" and span.at is not None:
        return esc(span.at.strftime("%Y-%m-%d %H:%M UTC"))
    if span.kind == "chat":
        return "this chat" if span.here else f"<code>{esc(span.text)}</code>"
    if span.kind == "command":
        return esc("/" + span.text)
    return esc(span.text)


def line_html(ln: Line) -> str:
    return "".join(span_html(s) for s in ln)


def reply_lines(reply: Reply) -> list[str]:
    """A command reply as HTML lines: title, lines, alerts, sections, footer; bad input ends
    with the command's right form."""
    if reply.explain is not None:
        return explain_lines(reply.explain)
    lines = [f"<b>{esc(reply.title)}</b>"] if reply.title else []
    lines += [line_html(ln) for ln in reply.lines]
    lines += [alert_summary_line(a) for a in reply.alerts]
    for section in reply.sections:
        if section.inline and len(section.lines) == 1:
            lines.append(f"<b>{esc(section.title)}:</b> {line_html(section.lines[0])}")
        else:
            lines.append(f"<b>{esc(section.title)}</b>")
            lines += [line_html(ln) for ln in section.lines]
    if reply.footer:
        lines.append(f"<i>{esc(reply.footer)}</i>")
    if reply.usage and lines:
        lines[-1] = f"{lines[-1].rstrip('.')}. Use: /{esc(reply.usage)}"
    return lines
