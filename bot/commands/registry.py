"""The command table: name, usage, help line, function; and running one safely.

`@command("mute <duration> [rule-id]")` registers a function
`(services, destination, args) -> Reply`; its docstring's first line is its
help text. `run` checks the arguments' shape, calls it, and turns bad input
(`PreferenceError`) and refusals (`Refusal`) into a one-line refusal reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.commands.parse import MAX_ARG_LENGTH, PreferenceError
from bot.commands.reply import Line, Refusal, Reply, refusal_reply

if TYPE_CHECKING:
    from bot.services import Services
    from bot.storage.store import Destination

MAX_ARGS = 25


async def _anyone() -> bool:
    return True


async def _nothing_to_check(what: Line) -> None:
    return None


@dataclass(frozen=True)
class ChatDestination:
    """Where a command was sent (or, on Discord, the channel it names), as the adapter saw it.

    `may_change`: whether the caller may change what this destination receives
    (Telegram: group admins; Discord: Manage Server/Channels), asked only when a
    command is about to change something; `refusal` is what a caller who may not
    is told. `scope`: the `chat_kind` shared by destinations listed together
    (Discord: the server), None for just this one. `check_route`: raises
    `Refusal` if alerts cannot be delivered here (Discord checks its permissions
    and posts a notice in another channel). Commands act on this address only —
    never on an id a user typed — so nothing typed in one chat reaches another's settings.
    """

    adapter: str
    address: str
    chat_kind: str | None = None
    title: str | None = None
    scope: str | None = None
    may_change: Callable[[], Awaitable[bool]] = _anyone
    refusal: str = "Sorry, only this group's admins can change what Readout sends here."
    check_route: Callable[[Line], Awaitable[None]] = _nothing_to_check
    commands: frozenset[str] = frozenset()  # the commands this platform offers (/help); empty: all
    user_id: str | None = None  # who sent the command (for ADMINS), when the platform says

    def is_admin(self, services: Services) -> bool:
        """Whether the caller is one of Readout's operators (`ADMINS`: user ids, optionally
        `telegram:`/`discord:`-prefixed)."""
        if self.user_id is None:
            return False
        admins = services.settings.admin_ids()
        return self.user_id in admins or f"{self.adapter}:{self.user_id}" in admins

    async def require_change(self) -> None:
        if not await self.may_change():
            raise Refusal(self.refusal)

    async def ensure(self, services: Services) -> Destination:
        """The stored destination, created (or re-enabled) now."""
        return await services.store.ensure_destination(
            self.adapter,
            self.address,
            at=services.clock.now(),
            chat_kind=self.chat_kind,
            title=self.title,
        )


CommandFunc = Callable[["Services", ChatDestination, Sequence[str]], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    func: CommandFunc = field(repr=False)
    max_args: int = MAX_ARGS


COMMANDS: dict[str, Command] = {}


def command(usage: str, *, max_args: int = MAX_ARGS) -> Callable[[CommandFunc], CommandFunc]:
    """Register a command under the first word of `usage`; the docstring's first line is its help.

    `max_args`: more words than this are refused (a pasted headline is many words)."""

    def wrap(func: CommandFunc) -> CommandFunc:
        name = usage.split()[0]
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is registered twice")
        help_text = (func.__doc__ or name).strip().splitlines()[0]
        COMMANDS[name] = Command(name, usage, help_text, func, max_args)
        return func

    return wrap


async def run(
    name: str, services: Services, destination: ChatDestination, args: Sequence[str]
) -> Reply:
    """Run command `name`; bad input and refusals come back as a refusal reply, never raised."""
    cmd = COMMANDS[name]
    try:
        check_args(args, max_args=cmd.max_args)
        return await cmd.func(services, destination, args)
    except PreferenceError as exc:
        return refusal_reply(Refusal(str(exc)), usage=cmd.usage)
    except Refusal as exc:
        return refusal_reply(exc)


def check_args(args: Sequence[str], *, max_args: int = MAX_ARGS) -> None:
    if len(args) > max_args:
        raise PreferenceError(f"too many arguments (at most {max_args})")
    if any(len(a) > MAX_ARG_LENGTH for a in args):
        raise PreferenceError(f"argument too long (at most {MAX_ARG_LENGTH} characters)")


def one_arg(args: Sequence[str], *, required: bool = False) -> str | None:
    if len(args) > 1:
        raise PreferenceError("one argument at a time")
    if required and not args:
        raise PreferenceError("an argument is needed")
    return args[0] if args else None
