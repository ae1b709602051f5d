"""Chat commands, once for every platform: `(services, destination, args) -> Reply`.

The adapters (Telegram, Discord) only turn platform input into a
`ChatDestination` and a list of string arguments, call `run(name, …)`, and
render the `Reply` (spans → HTML or Markdown, sections → embed fields). So
`/mute 2h` parses, checks and answers the same everywhere.

Modules: `registry` (the table, `ChatDestination`, `run`), `reply` (the reply
model, `Refusal`), `parse` (durations, quiet hours, filters, selectors →
`PreferenceError`), `limit` (per-user command rate limit), and the commands:
`routing` (start, subscribe, unsubscribe, subscriptions, filter), `mutes`
(mute, unmute, quiet), `views` (why, rules, watchlist, recent, status, help),
`tryout` (try: explain a pasted headline).

Adding a command:

1. Write it in the module of its concern (or a new module imported below):

       @command("digest [on | off]")
       async def digest(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
           \"\"\"Get one digest a day instead of single alerts.\"\"\"   # the help line
           ...
           await dest.require_change()   # before changing anything (group admins only)
           ...
           return say(line("📰 Digest on for ", chat(dest.address), "."), public=True)

   Raise `PreferenceError("…")` for bad input (the usage is added for you) and
   `Refusal(…)` when nothing may or need change. Never write markup: use
   spans (`code`, `bold`, `when`, `chat`, `cmd`).
2. Telegram picks it up by itself (handler, command menu, /help).
3. Discord: add a subcommand in `bot/adapters/discord_commands.py` that declares
   its typed options and calls `self.run(interaction, "digest", [value])`.
4. Add its cases to `tests/test_commands_table.py` (run against both adapters).
"""

# Importing the command modules registers their commands; this order is the menu order.
from bot.commands import routing  # noqa: I001
from bot.commands import mutes
from bot.commands import views
from bot.commands import stats
from bot.commands import tryout
from bot.commands.parse import PreferenceError
from bot.commands.registry import COMMANDS, ChatDestination, Command, command, run
from bot.commands.reply import Refusal, Reply

__all__ = [
    "COMMANDS",
    "ChatDestination",
    "Command",
    "PreferenceError",
    "Refusal",
    "Reply",
    "command",
    "mutes",
    "routing",
    "run",
    "stats",
    "tryout",
    "views",
]
