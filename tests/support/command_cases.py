"""One table of chat-command cases, run against both adapters.

`tests/test_telegram_commands.py` and `tests/test_discord_commands.py` each turn
a case into their platform's input (a message with arguments; a slash command
with typed options), run it through the real adapter against its fake server,
bring the answer back to neutral text (`this chat` for the chat's own mention,
`/rules` for a command, times as `YYYY-MM-DD HH:MM UTC`) and check the same
text, the same refusal-or-change, and the same subscriptions afterwards.
The clock stands at 2025-04-02 20:00 UTC in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["change", "refusal", "view"]


@dataclass(frozen=True)
class Case:
    id: str
    command: str
    args: tuple[str, ...]
    expected: str  # a fragment of the neutral answer text
    outcome: Outcome
    subscribed_before: tuple[tuple[str, str], ...] = ()
    subscribed_after: tuple[tuple[str, str], ...] | None = None  # None: same as before


CASES = [
    Case("subscribe-default", "subscribe", (), "✅ Subscribed this chat to warning and above.", "change",
         subscribed_after=(("severity", "warning"),)),
    Case("subscribe-tag", "subscribe", ("tariffs",), "✅ Subscribed this chat to tag tariffs.", "change",
         subscribed_after=(("tag", "tariffs"),)),
    Case("subscribe-rule", "subscribe", ("tariff-announcement",),
         "✅ Subscribed this chat to rule tariff-announcement.", "change",
         subscribed_after=(("rule", "tariff-announcement"),)),
    Case("subscribe-severity-any-case", "subscribe", ("CRITICAL",),
         "✅ Subscribed this chat to critical and above.", "change",
         subscribed_after=(("severity", "critical"),)),
    # Discord's behaviour won: subscribing again changes nothing, so it is a refusal.
    Case("subscribe-again", "subscribe", ("critical",),
         "Already subscribed to critical and above in this chat.", "refusal",
         subscribed_before=(("severity", "critical"),)),
    Case("subscribe-unknown", "subscribe", ("nonsense",),
         "unknown rule, tag or severity 'nonsense': see /rules", "refusal"),
    Case("unsubscribe-nothing", "unsubscribe", (), "No subscriptions in this chat to stop.", "refusal"),
    Case("unsubscribe-all", "unsubscribe", (), "🔕 Unsubscribed this chat from everything (2 subscriptions).",
         "change", subscribed_before=(("severity", "critical"), ("tag", "tariffs")), subscribed_after=()),
    # Discord's matching won: what is subscribed is matched, so a tag gone from the rules still goes.
    Case("unsubscribe-gone-tag", "unsubscribe", ("old-tag",), "🔕 Unsubscribed this chat from tag old-tag.",
         "change", subscribed_before=(("tag", "old-tag"), ("severity", "critical")),
         subscribed_after=(("severity", "critical"),)),
    Case("unsubscribe-not-subscribed", "unsubscribe", ("info",),
         "No subscription to info in this chat; see /subscriptions.", "refusal",
         subscribed_before=(("severity", "critical"),)),
    Case("mute-all", "mute", ("2h",), "🔇 Muted all alerts in this chat until 2025-04-02 22:00 UTC. /unmute ends it.",
         "change"),
    Case("mute-1w", "mute", ("1w",), "until 2025-04-09 20:00 UTC", "change"),
    Case("mute-bad-duration", "mute", ("soon",), "duration must look like 30m, 2h, 1d or 1w", "refusal"),
    Case("mute-unknown-rule", "mute", ("1h", "nope"), "unknown rule 'nope' (see /rules)", "refusal"),
    Case("unmute-nothing", "unmute", (), "Nothing is muted in this chat.", "refusal"),
    Case("quiet-set", "quiet", ("22:00-7:00", "Asia/Shanghai"), "🌙 Quiet 22:00–07:00 Asia/Shanghai in this chat",
         "change"),
    Case("quiet-bad-zone", "quiet", ("22:00-07:00", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'", "refusal"),
    Case("quiet-off-none", "quiet", ("off",), "No quiet hours in this chat.", "refusal"),
    Case("quiet-session", "quiet", ("us-regular",),
         "🏛 Alerts in this chat come only in the us-regular session (market calendar)", "change"),
    Case("stats-none", "stats", (), "No track record yet: outcomes appear 30 minutes after the first alert.",
         "view"),
    Case("stats-unknown-rule", "stats", ("nope",), "unknown rule 'nope' (see /rules)", "refusal"),
    Case("filter-set", "filter", ("+China", "-soybeans"), "Filter: +china -soybeans", "change"),
    Case("filter-bad-word", "filter", ("china",), "each filter word must be +word or -word", "refusal"),
    Case("why-unknown", "why", ("zzzz",), "No alert 'zzzz': use the #handle under an alert", "refusal"),
    Case("recent-none", "recent", (), "No alerts yet.", "view"),
    Case("watchlist-unknown", "watchlist", ("moon",), "unknown sector 'moon'; sectors: ", "refusal"),
]
