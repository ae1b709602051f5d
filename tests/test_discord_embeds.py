"""Alert embeds: colour by severity, Discord's limits, escaped markdown, no pings."""

from __future__ import annotations

from datetime import datetime, timezone

import discord
import pytest

from bot.adapters.discord_embeds import (
    DESCRIPTION_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FIELDS_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    TOTAL_LIMIT,
    SEVERITY_COLOUR,
    alert_embed,
    digest_embed,
    inert,
    safe_url,
    truncate,
)
from bot.models import Alert, Explanation, Severity, Tone, WatchItem

UTC = timezone.utc
T = datetime(2025, 4, 2, 20, 15, tzinfo=UTC)


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = dict(
        id="3f9a1c2e" + "0" * 16,
        rule_id="tariff-announcement",
        rule_description="Tariff announced",
        severity=Severity.warning,
        kind="news",
        event_id="e1",
        key="k",
        title="US to impose 25% tariffs on Chinese steel",
        url="https://example.com/news/1",
        source="Federal Register",
        event_time=T,
        created_at=T,
        tags=("tariffs",),
    )
    base.update(kw)
    return Alert.model_validate(base)


def _text(embed: discord.Embed) -> str:
    data = embed.to_dict()
    parts = [
        data.get("title", ""),
        data.get("description", ""),
        data.get("footer", {}).get("text", ""),
    ]
    for f in data.get("fields", []):
        parts += [f["name"], f["value"]]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("severity", "colour"),
    [(Severity.info, 0x3498DB), (Severity.warning, 0xE67E22), (Severity.critical, 0xE74C3C)],
)
def test_colour_follows_severity(severity: Severity, colour: int) -> None:
    embed = alert_embed(_alert(severity=severity))
    assert embed.colour == SEVERITY_COLOUR[severity]
    assert embed.to_dict()["color"] == colour


def test_title_links_to_source_and_footer_carries_source_time_and_handle() -> None:
    a = _alert(
        tone=Tone.friction,
        tone_score=-0.42,
        watchlist=(
            WatchItem(
                name="steel", title="Steel", why="Tariffs hit importers", tickers=("X", "NUE")
            ),
        ),
        explanation=Explanation(matched_terms=("tariff",)),
    )
    data = alert_embed(a).to_dict()
    assert data["title"] == "US to impose 25% tariffs on Chinese steel"
    assert data["url"] == "https://example.com/news/1"
    assert (
        data["footer"]["text"]
        == "Federal Register · 2025-04-02 20:15 UTC · tariff-announcement · #3f9a1c2e"
    )
    fields = {f["name"]: f["value"] for f in data["fields"]}
    assert fields["Tone"] == "friction (-0.42)"
    assert fields["Watch: Steel"] == "**X, NUE** — Tariffs hit importers"
    assert "Tariff announced" in data["description"]
    assert "matched 'tariff'" in data["description"]


def test_no_tone_field_without_tone() -> None:
    data = alert_embed(_alert()).to_dict()
    assert all(f["name"] != "Tone" for f in data.get("fields", []))


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "ftp://example.com/x", "https://", "not a url", "https://a b.com/"],
)
def test_only_http_links(url: str) -> None:
    assert safe_url(url) is None
    assert "url" not in alert_embed(_alert(url=url)).to_dict()


def test_feed_text_cannot_ping_or_render_mentions() -> None:
    a = _alert(
        title="@everyone tariffs <@123456789012345678> <@&987654321098765432> @here",
        message="ping <@!42> and @everyone",
        source="@here feed",
        watchlist=(WatchItem(name="x", title="@everyone", why="<@1> why", tickers=("@here",)),),
    )
    text = _text(alert_embed(a))
    assert "@everyone" not in text and "@here" not in text
    assert "<@1" not in text and "<@&" not in text and "<@!" not in text
    assert "@\u200beveryone" in text and "<@\u200b123456789012345678>" in text


def test_markdown_in_feed_text_is_escaped() -> None:
    a = _alert(
        title="**Breaking** _tariffs_ `code`", message="# Big header\n> quote\n||spoiler|| ~~gone~~"
    )
    data = alert_embed(a).to_dict()
    assert data["title"] == r"\*\*Breaking\*\* \_tariffs\_ \`code\`"
    assert r"\# Big header" in data["description"]
    assert r"\> quote" in data["description"]
    assert r"\|\|spoiler\|\|" in data["description"]
    assert r"\~\~gone\~\~" in data["description"]


def test_limits_are_respected_with_an_ellipsis() -> None:
    many = tuple(
        WatchItem(
            name=f"s{i}",
            title="T" * 400,
            why="w" * 2000,
            tickers=tuple(f"TK{j}" for j in range(50)),
        )
        for i in range(40)
    )
    a = _alert(
        title="H" * 1000,
        message="M" * 10_000,
        rule_description="D" * 500,
        source="S" * 3000,
        tone=Tone.hope,
        tone_score=0.5,
        watchlist=many,
    )
    embed = alert_embed(a)
    data = embed.to_dict()
    assert len(data["title"]) <= TITLE_LIMIT and data["title"].endswith("…")
    assert len(data["description"]) <= DESCRIPTION_LIMIT
    assert len(data["footer"]["text"]) <= FOOTER_LIMIT and data["footer"]["text"].endswith("…")
    assert len(data["fields"]) <= FIELDS_LIMIT
    for f in data["fields"]:
        assert 0 < len(f["name"]) <= FIELD_NAME_LIMIT
        assert 0 < len(f["value"]) <= FIELD_VALUE_LIMIT
    assert len(embed) <= TOTAL_LIMIT


def test_truncate_and_inert_helpers() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 4) == "abc…"
    assert len(truncate("x" * 5000, 256)) == 256
    assert inert("mail me at a@b.c") == "mail me at a@b.c"


def test_digest_lists_each_alert_within_limits() -> None:
    alerts = [_alert(id=f"{i:08x}" + "0" * 16, title=f"headline {i} @everyone") for i in range(300)]
    alerts[5] = _alert(id="ffffffff" + "0" * 16, severity=Severity.critical)
    embed = digest_embed(alerts)
    data = embed.to_dict()
    assert data["title"] == "While you were quiet: 300 alerts"
    assert data["color"] == 0xE74C3C
    assert len(data["description"]) <= DESCRIPTION_LIMIT
    assert data["description"].splitlines()[-1].startswith("…and ")
    assert "[headline 0 @\u200beveryone](https://example.com/news/1)" in data["description"]
    assert "@everyone" not in data["description"]
    assert len(embed) <= TOTAL_LIMIT
