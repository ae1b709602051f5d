"""Alerts and command answers as Discord embeds, within Discord's limits.

Everything that came from a feed is made inert before it reaches an embed:
mentions get a zero-width space (`@\u200beveryone`, `<@\u200b123>`) so they
neither ping (the adapter also sends with `AllowedMentions.none()`) nor render
as a mention, and markdown is escaped so a headline cannot restyle the embed.
Every text is cut to its limit with "…"; `fit` keeps the whole embed under
Discord's 6000-character total.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import discord

from bot.commands.reply import Line, Reply, Span
from bot.delivery.render import SEVERITY_MARKER, TONE_LABEL, handle
from bot.delivery.render import safe_url as shared_safe_url
from bot.models import Alert, Severity

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
FIELDS_LIMIT = 25
TOTAL_LIMIT = 6000
URL_LIMIT = 2048
ELLIPSIS = "…"

SEVERITY_COLOUR: dict[Severity, discord.Colour] = {
    Severity.info: discord.Colour(0x3498DB),  # blue
    Severity.warning: discord.Colour(0xE67E22),  # orange
    Severity.critical: discord.Colour(0xE74C3C),  # red
}
NEUTRAL_COLOUR = discord.Colour(0x95A5A6)

_MENTION = re.compile(r"@(everyone|here|[!&]?\d+)")
_MAX_SECTORS = 20


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS if limit > 0 else ""


def inert(text: str) -> str:
    """Mentions made inert for display: `@everyone` → `@\u200beveryone`, `<@1>` → `<@\u200b1>`."""
    return _MENTION.sub("@\u200b\\1", text)


def safe(text: str) -> str:
    """Feed text ready for an embed: mentions inert, markdown escaped."""
    return discord.utils.escape_markdown(inert(text))


def link_text(text: str) -> str:
    """Safe text for the label of a masked link `[label](url)`."""
    return safe(text).replace("[", "\\[").replace("]", "\\]")


def safe_url(url: str | None) -> str | None:
    """A linkable http(s) URL within this platform's length limit, else None."""
    return shared_safe_url(url, max_length=URL_LIMIT)


def linked(label: str, url: str | None) -> str:
    """`[label](url)` when the URL is safe to link (no parentheses or brackets), else the label."""
    text = link_text(label)
    target = safe_url(url)
    if target is None or any(c in target for c in "()<>[]"):
        return text
    return f"[{text}]({target})"


def add_field(embed: discord.Embed, name: str, value: str, *, inline: bool = False) -> bool:
    """Add a field within the name/value limits; False when the embed has no room left."""
    if len(embed.fields) >= FIELDS_LIMIT:
        return False
    embed.add_field(
        name=truncate(name, FIELD_NAME_LIMIT) or "\u200b",
        value=truncate(value, FIELD_VALUE_LIMIT) or "\u200b",
        inline=inline,
    )
    return True


def fit(embed: discord.Embed, *, limit: int = TOTAL_LIMIT) -> discord.Embed:
    """Bring the embed under Discord's total limit: drop trailing fields, then shorten the description."""
    while len(embed) > limit and len(embed.fields) > 0:
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > limit and embed.description:
        excess = len(embed) - limit
        embed.description = truncate(embed.description, max(len(embed.description) - excess, 0))
    if len(embed) > limit and embed.title:
        excess = len(embed) - limit
        embed.title = truncate(embed.title, max(len(embed.title) - excess, 1))
    return embed


def lines_within(lines: Sequence[str], limit: int, *, more: str = "…and {n} more") -> str:
    """Join lines up to `limit` characters; the rest is counted in a closing `more` line."""
    out: list[str] = []
    used = 0
    for i, raw in enumerate(lines):
        line = truncate(raw, limit)
        rest = len(lines) - i - 1
        tail = len(more.format(n=rest + 1)) + 1
        if used + len(line) + 1 + (tail if rest else 0) > limit:
            out.append(more.format(n=len(lines) - i))
            break
        out.append(line)
        used += len(line) + 1
    return truncate("\n".join(out), limit)


def alert_embed(alert: Alert) -> discord.Embed:
    """One alert: colour by severity, headline linked to its source, tone, watch-list, footer."""
    description = [f"**{safe(alert.rule_description)}** · {alert.severity.value.upper()}"]
    if alert.message:
        description.append(safe(alert.message))
    why = alert.explanation.summary()
    if why:
        description.append(f"*Why:* {safe(why)}")
    embed = discord.Embed(
        title=truncate(safe(alert.title), TITLE_LIMIT),
        url=safe_url(alert.url),
        description=truncate("\n".join(description), DESCRIPTION_LIMIT),
        colour=SEVERITY_COLOUR.get(alert.severity, NEUTRAL_COLOUR),
    )
    if alert.tone is not None:
        score = f" ({alert.tone_score:+.2f})" if alert.tone_score is not None else ""
        add_field(embed, "Tone", f"{TONE_LABEL[alert.tone]}{score}", inline=True)
    sectors = list(alert.watchlist)
    for item in sectors[:_MAX_SECTORS]:
        tickers = ", ".join(safe(t) for t in item.tickers) or "—"
        add_field(embed, f"Watch: {safe(item.title)}", f"**{tickers}** — {safe(item.why)}")
    if len(sectors) > _MAX_SECTORS:
        add_field(embed, "Watch: more", f"…and {len(sectors) - _MAX_SECTORS} more sectors")
    footer = f"{inert(alert.source)} · {alert.event_time:%Y-%m-%d %H:%M} UTC · {alert.rule_id} · #{handle(alert)}"
    embed.set_footer(text=truncate(footer, FOOTER_LIMIT))
    return fit(embed)


def alert_line(alert: Alert) -> str:
    """One line per alert for digests and `/readout recent`."""
    marker = SEVERITY_MARKER.get(alert.severity, "•")
    when = f"<t:{int(alert.event_time.timestamp())}:f>"
    return f"{marker} {linked(alert.title, alert.url)} — `{alert.rule_id}` · {when} · #{handle(alert)}"


def digest_embed(alerts: Sequence[Alert], *, title: str | None = None) -> discord.Embed:
    """Alerts held during quiet hours, one line each, coloured by the most severe."""
    worst = max((a.severity for a in alerts), key=lambda s: s.rank, default=Severity.info)
    embed = discord.Embed(
        title=title or f"While you were quiet: {len(alerts)} alert{'s' if len(alerts) != 1 else ''}",
        description=lines_within([alert_line(a) for a in alerts], DESCRIPTION_LIMIT)
        or "Nothing new.",
        colour=SEVERITY_COLOUR[worst],
    )
    embed.set_footer(text="Readout · /readout recent for details")
    return fit(embed)


def list_embed(title: str, lines: Iterable[str], *, empty: str, colour: discord.Colour | None = None) -> discord.Embed:
    """A titled list (rules, subscriptions, recent alerts), cut to fit one embed."""
    items = list(lines)
    embed = discord.Embed(
        title=truncate(title, TITLE_LIMIT),
        description=lines_within(items, DESCRIPTION_LIMIT) if items else empty,
        colour=colour or NEUTRAL_COLOUR,
    )
    return fit(embed)


# ---- command replies ------------------------------------------------------------


def span_markdown(span: Span) -> str:
    """One span of a command reply as Discord Markdown (text made inert and escaped)."""
    if span.kind == "code":
        return f"`{inert(span.text).replace('`', 'ˋ')}`"
    if span.kind == "bold":
        return f"**{safe(span.text)}**"
    if span.kind == "italic":
        return f"*{safe(span.text)}*"
    if span.kind == "time" and span.at is not None:
        return f"<t:{int(span.at.timestamp())}:f>"
    if span.kind == "chat":
        return f"<#{int(span.text)}>" if span.text.isdigit() else safe(span.text)
    if span.kind == "command":
        return f"`/readout {inert(span.text)}`"
    return safe(span.text)


def line_markdown(ln: Line) -> str:
    return "".join(span_markdown(s) for s in ln)


def reply_message(reply: Reply) -> tuple[str | None, discord.Embed | None]:
    """A command reply as message content, or as an embed when it has a title, sections or alerts."""
    if reply.explain is not None:
        return None, alert_embed(reply.explain)
    lines = [line_markdown(ln) for ln in reply.lines] + [alert_line(a) for a in reply.alerts]
    if not reply.rich:
        return truncate("\n".join(lines), 2000), None
    colour = SEVERITY_COLOUR[reply.severity] if reply.severity is not None else NEUTRAL_COLOUR
    embed = discord.Embed(
        title=truncate(reply.title or "Readout", TITLE_LIMIT),
        description=lines_within(lines, DESCRIPTION_LIMIT) if lines else None,
        colour=colour,
    )
    for section in reply.sections:
        value = "\n".join(line_markdown(ln) for ln in section.lines)
        if not add_field(embed, section.title, value, inline=section.inline):
            embed.set_footer(text="…and more")
            break
    if reply.footer:
        embed.set_footer(text=truncate(reply.footer, FOOTER_LIMIT))
    return None, fit(embed)
