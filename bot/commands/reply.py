"""What a command answers, before any platform markup: spans, lines, sections, buttons.

A command never writes HTML or Markdown. It returns a `Reply` made of `Span`s
(plain text, code, bold, a time, a chat, another command); each adapter renders
them (Telegram: escaped HTML; Discord: inert Markdown, `<t:…>` times, `<#…>`
channels, embeds for titled replies). `Refusal` and `PreferenceError` are how a
command says "nothing was changed" and "that input is wrong".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.models import Alert, Severity

SpanKind = Literal["text", "code", "bold", "italic", "time", "chat", "command"]


@dataclass(frozen=True)
class Span:
    """A piece of a line. `text` is shown as is (adapters escape it); `at` for times;
    for `chat`, `text` is the address and `here` says it is the chat the command came from;
    for `command`, `text` is the command name plus arguments (adapters add `/` or `/readout `)."""

    kind: SpanKind
    text: str = ""
    at: datetime | None = None
    here: bool = False


Line = tuple[Span, ...]


def line(*parts: Span | str) -> Line:
    """A line from spans and plain strings (strings become text spans)."""
    return tuple(p if isinstance(p, Span) else Span("text", p) for p in parts)


def code(text: str) -> Span:
    return Span("code", text)


def bold(text: str) -> Span:
    return Span("bold", text)


def italic(text: str) -> Span:
    return Span("italic", text)


def when(at: datetime) -> Span:
    return Span("time", at=at)


def chat(address: str, *, here: bool = True) -> Span:
    return Span("chat", address, here=here)


def cmd(text: str) -> Span:
    """Another command, e.g. `cmd("rules")` → `/rules` on Telegram, `/readout rules` on Discord."""
    return Span("command", text)


def plain(ln: Line) -> str:
    """The line as plain text (logs, notices, tests)."""
    out = []
    for s in ln:
        if s.kind == "time" and s.at is not None:
            out.append(s.at.strftime("%Y-%m-%d %H:%M UTC"))
        elif s.kind == "chat":
            out.append("this chat" if s.here else s.text)
        elif s.kind == "command":
            out.append("/" + s.text)
        else:
            out.append(s.text)
    return "".join(out)


@dataclass(frozen=True)
class Section:
    """A titled block (a Discord embed field); `inline` ones are short one-liners."""

    title: str
    lines: tuple[Line, ...]
    inline: bool = False


@dataclass(frozen=True)
class Button:
    """A button that runs an action (Telegram callback data; adapters without buttons skip them)."""

    label: str
    action: str


@dataclass(frozen=True)
class Reply:
    """A command's answer.

    `refusal`: nothing was changed (Discord shows it only to the caller);
    `public`: a change everyone in the chat should see (Discord: not ephemeral);
    `usage`: the command's right form, for bad input; `severity`: a colour hint;
    `alerts`: alerts listed one line each; `explain`: an alert to explain in full.
    """

    lines: tuple[Line, ...] = ()
    title: str | None = None
    sections: tuple[Section, ...] = ()
    footer: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    alerts: tuple[Alert, ...] = ()
    explain: Alert | None = None
    severity: Severity | None = None
    refusal: bool = False
    public: bool = False
    usage: str | None = None

    @property
    def rich(self) -> bool:
        """Titled, sectioned or alert-carrying replies (Discord: an embed)."""
        return bool(self.title or self.sections or self.alerts or self.explain)

    def text(self) -> str:
        """Everything as plain text (for logs and tests)."""
        parts = [self.title] if self.title else []
        parts += [plain(ln) for ln in self.lines]
        for s in self.sections:
            parts.append(s.title)
            parts += [plain(ln) for ln in s.lines]
        return "\n".join(parts)


def say(*lines: Line | str, public: bool = False) -> Reply:
    """A reply of a few lines (strings become one-span lines)."""
    return Reply(lines=tuple(line(ln) if isinstance(ln, str) else ln for ln in lines), public=public)


class Refusal(Exception):  # noqa: N818 - an answer, not an error
    """A one-line answer; nothing was changed."""

    def __init__(self, *parts: Span | str) -> None:
        self.line = line(*parts)
        super().__init__(plain(self.line))


def refusal_reply(exc: Refusal, usage: str | None = None) -> Reply:
    return Reply(lines=(exc.line,), refusal=True, usage=usage)
