"""What a chat API's refusal means for delivery: one classification for Telegram and Discord.

Adapters turn an API error into a `Fault`; the outbox acts on its `kind` alone:

    FaultKind
    ├── MESSAGE     this message can never go as it is (a 400: too long, bad markup, a bad
    │               button): reshaped once (plain text, shortened) or given up at once, so
    │               the chat's queue moves on
    ├── CHAT        the chat is gone for this bot (blocked, kicked, deleted, deactivated):
    │               confirmed by a second attempt later, then the destination is disabled
    ├── RATE_LIMIT  wait `retry_after` seconds; not a failed attempt
    └── TRANSIENT   5xx, timeouts, network errors, 401, and any 403/404 whose text is not
                    one of the known "chat is gone" answers (a proxy, an incident): retried
                    with backoff, never unsubscribes anyone

Only the exact descriptions Telegram documents end a chat: a bare "Forbidden" from a
proxy or a self-hosted Bot API is an API fault, not a user leaving.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    MESSAGE = "message"
    CHAT = "chat"
    RATE_LIMIT = "rate_limit"
    TRANSIENT = "transient"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    reason: str
    retry_after: float | None = None  # seconds, RATE_LIMIT only


# Telegram's descriptions (lower case, matched as substrings) that mean the bot can no
# longer write to the chat. 403s: the user or group ended it; 400s: the chat or topic is gone.
TELEGRAM_CHAT_GONE = (
    "bot was blocked by the user",
    "bot was kicked from",
    "user is deactivated",
    "bot can't initiate conversation with a user",
    "bot is not a member of",
    "the group chat was deleted",
    "group chat was deactivated",
    "chat not found",
    "message thread not found",
    "thread not found",
    "topic_deleted",
    "chat_write_forbidden",
    "have no rights to send a message",
    "not enough rights to send",
    "need administrator rights in the channel chat",
    "peer_id_invalid",
)

# Discord JSON error codes that mean the channel is gone for this bot.
DISCORD_CHAT_GONE = {
    10003: "Unknown Channel",
    50001: "Missing Access",
    50007: "Cannot send messages to this user",
    50013: "Missing Permissions",
}


def classify_telegram(status: int, description: str, *, retry_after: float | None = None) -> Fault:
    """A Bot API error answer (`error_code`, `description`) → what delivery should do."""
    text = description.lower()
    reason = f"telegram {status}: {description}"[:300]
    if status == 429:
        return Fault(FaultKind.RATE_LIMIT, reason, retry_after if retry_after is not None else 1.0)
    if status in (400, 403) and any(m in text for m in TELEGRAM_CHAT_GONE):
        return Fault(FaultKind.CHAT, reason)
    if status == 400:
        return Fault(FaultKind.MESSAGE, reason)
    return Fault(FaultKind.TRANSIENT, reason)


def classify_discord(
    status: int, code: int, text: str, *, retry_after: float | None = None
) -> Fault:
    """A Discord REST error (HTTP status, JSON `code`, message) → what delivery should do."""
    reason = f"discord {status} ({code}: {text[:200]})"
    if status == 429:
        return Fault(FaultKind.RATE_LIMIT, reason, retry_after)
    if code in DISCORD_CHAT_GONE:
        return Fault(FaultKind.CHAT, reason)
    if status == 400 or (400 < status < 500 and status not in (401, 403, 404, 408, 409)):
        return Fault(FaultKind.MESSAGE, reason)
    return Fault(FaultKind.TRANSIENT, reason)
