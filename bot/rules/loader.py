"""Load a rules directory into an immutable RuleSet, or report every problem.

A rules directory holds `sources.yaml` (feeds and price series),
`watchlists.yaml` (sectors and tickers), optionally `calendar.yaml` (scheduled events that
surge sources, `bot.rules.calendar`) and any number of rule files
(`*.yaml` / `*.yml`, loaded in name order, each `rules: [...]`).

Layers: given `defaults` (the bundled `rules/`), a user's directory may hold only some
files. `sources.yaml` and `watchlists.yaml` come from the defaults when the directory has
none; the bundled rule files are used when it has no rule file of its own (one rule file
of yours replaces them all). Problems are
collected across all files — syntax, schema, then cross-file checks (duplicate
ids, unknown watch-lists, sources and confirm references, confirm cycles) — and
reported together as `path:line: message`, so one `check-rules` run shows
everything to fix.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.models import WatchItem
from bot.rules.calendar import CALENDAR_FILE, CALENDAR_KEYS, CalendarEntry, CalendarFile
from bot.rules.schema import (
    RULE_ADAPTER,
    ChangeRule,
    ConfirmRule,
    Rule,
    RuleFileShape,
    ThresholdRule,
    WatchlistsFile,
    known_keys,
)
from bot.rules.yamlfile import (
    Problem,
    YamlDoc,
    YamlError,
    load_yaml,
    parse_yaml,
    validation_problems,
)
from bot.sources.config import FeedSource, HostBudget, PriceSource, SourcesFile

__all__ = ["Problem", "RuleLoadError", "RuleSet", "check_rules_dir", "load_rules_dir"]

SOURCES_FILE = "sources.yaml"
WATCHLISTS_FILE = "watchlists.yaml"
_SPECIAL = {SOURCES_FILE, WATCHLISTS_FILE, CALENDAR_FILE, "sources.yml", "watchlists.yml", "calendar.yml"}

# What each file must look like, said the way a person editing it would say it.
_SHAPES = {
    SOURCES_FILE: "the file must be a mapping with `feeds:` and/or `prices:` lists (and optionally `hosts:`)",
    WATCHLISTS_FILE: "the file must be a mapping with a `watchlists:` mapping",
    CALENDAR_FILE: "the file must be a mapping with an `events:` list",
}
_RULE_FILE_SHAPE = "the file must be a mapping with a `rules:` list"
# pydantic's wording → the user's.
_USER_WORDS = (
    ("Input should be a valid dictionary or instance of ", "expected a mapping (`key: value` lines), not "),
    ("Input should be a valid dictionary or object to extract fields from", "expected a mapping (`key: value` lines)"),
    ("Input should be a valid dictionary", "expected a mapping (`key: value` lines)"),
    ("Input should be a valid list", "expected a list (lines starting with `- `)"),
    ("Input should be a valid string", "expected text"),
    ("Input should be a valid number, unable to parse string as a number", "expected a number"),
    ("Input should be a valid number", "expected a number"),
    ("Input should be a valid boolean, unable to interpret input", "expected true or false"),
    ("Input should be a valid boolean", "expected true or false"),
    ("Input should be ", "expected "),
    ("String should match pattern ", "expected text matching the pattern "),
)
_ESCAPE_HINT = (
    " — a regex in double quotes? Use single quotes ('\\d+%') or double each backslash"
)


class RuleLoadError(Exception):
    """The rules directory has problems; `problems` lists all of them."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class RuleSet:
    """Sources, watch-lists and rules from one directory; immutable once loaded."""

    __slots__ = ("_by_id", "_calendar", "_origins", "_rules", "_sources", "_warnings", "_watchlists")
    _sources: SourcesFile
    _watchlists: Mapping[str, WatchItem]
    _rules: tuple[Rule, ...]
    _by_id: Mapping[str, Rule]
    _origins: Mapping[str, tuple[str, int]]
    _warnings: tuple[Problem, ...]
    _calendar: tuple[CalendarEntry, ...]

    def __init__(
        self,
        *,
        sources: SourcesFile,
        watchlists: dict[str, WatchItem],
        rules: Iterable[Rule],
        origins: dict[str, tuple[str, int]] | None = None,
        warnings: Iterable[Problem] = (),
        calendar: Iterable[CalendarEntry] = (),
    ) -> None:
        rules = tuple(rules)
        set_ = object.__setattr__
        set_(self, "_sources", sources)
        set_(self, "_watchlists", MappingProxyType(dict(watchlists)))
        set_(self, "_rules", rules)
        set_(self, "_by_id", MappingProxyType({r.id: r for r in rules}))
        set_(self, "_origins", MappingProxyType(dict(origins or {})))
        set_(self, "_warnings", tuple(warnings))
        set_(self, "_calendar", tuple(calendar))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RuleSet is immutable; load a new one")

    @property
    def sources(self) -> SourcesFile:
        return self._sources

    @property
    def calendar(self) -> tuple[CalendarEntry, ...]:
        """Scheduled events from `calendar.yaml` (empty without one)."""
        return self._calendar

    @property
    def warnings(self) -> list[Problem]:
        """Problems that do not stop loading (a price rule whose symbol no source provides)."""
        return list(self._warnings)

    @property
    def watchlists(self) -> dict[str, WatchItem]:
        """Sector name -> WatchItem (a copy)."""
        return dict(self._watchlists)

    @property
    def rules(self) -> list[Rule]:
        """Every rule, enabled or not, in file order (a copy)."""
        return list(self._rules)

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def enabled_rules(self) -> list[Rule]:
        return [r for r in self._rules if r.enabled]

    def tags(self) -> list[str]:
        return sorted({t for r in self._rules for t in r.tags})

    def watchlist_for(self, rule: Rule) -> tuple[WatchItem, ...]:
        return tuple(self._watchlists[n] for n in rule.watchlist if n in self._watchlists)

    def origin(self, rule_id: str) -> str | None:
        """`path:line` where the rule is defined (for check/test commands)."""
        found = self._origins.get(rule_id)
        return f"{found[0]}:{found[1]}" if found else None

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self._rules)} rules, {len(self._watchlists)} watch-lists)"


def load_rules_dir(
    path: Path, *, defaults: Path | None = None, contents: Mapping[str, str | None] | None = None
) -> RuleSet:
    """Load and validate a rules directory (over `defaults`, if given).

    Raises RuleLoadError listing every problem; `RuleSet.warnings` lists the rest.
    `contents` (file name in `path` → text, None: leave the file out) is used instead of
    reading those files: hot reload validates exactly the snapshot it checked for
    stability, with a broken file's last good text in its place."""
    ruleset, problems = _Loader(Path(path), defaults, contents).load()
    if problems or ruleset is None:
        raise RuleLoadError(problems)
    return ruleset


def check_rules_dir(path: Path, *, defaults: Path | None = None) -> list[Problem]:
    """Every problem in a rules directory (empty when it loads); warnings count as problems."""
    loader = _Loader(Path(path), defaults)
    ruleset, problems = loader.load()
    return problems + (ruleset.warnings if ruleset is not None else [])


@dataclass
class _Placed:
    """A validated rule and where it came from."""

    rule: Rule
    doc: YamlDoc
    index: int

    def problem(self, *loc: str | int, message: str) -> Problem:
        full = ("rules", self.index, *loc)
        return self.doc.problem(full, message)


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _unreadable(path: Path) -> str | None:
    """Why `path` cannot be loaded as a rule file, or None. Never opens it (a FIFO would block)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "cannot read: symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "missing" if not os.path.lexists(path) else "cannot read: dangling symbolic link"
        return f"cannot read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return f"cannot read: not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'not a file')})"
    return None


def _keys_of(*models: type[BaseModel]) -> set[str]:
    return {name for model in models for name in model.model_fields}


class _Loader:
    def __init__(
        self, root: Path, defaults: Path | None = None, contents: Mapping[str, str | None] | None = None
    ) -> None:
        self.root = root
        self.contents = dict(contents or {})  # the user's files as hot reload read them
        same = defaults is not None and defaults.is_dir() and defaults.resolve() == root.resolve()
        self.defaults = defaults if defaults is not None and defaults.is_dir() and not same else None
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def load(self) -> tuple[RuleSet | None, list[Problem]]:
        if not self.root.is_dir():
            return None, [
                Problem(
                    path=str(self.root),
                    line=0,
                    message="not a directory (pass --rules DIR or set RULES_DIR; "
                    "the bundled rules are used when neither is given)",
                )
            ]
        sources = self._load_sources()
        watchlists = self._load_watchlists()
        placed, invalid_ids = self._load_rule_files()
        rules = self._check_ids(placed)
        if watchlists is not None:
            self._check_watchlists(rules, watchlists)
        if sources is not None:
            self._check_sources(rules, sources)
            self._check_symbols(rules, sources)
        self._check_confirms(rules, invalid_ids)
        calendar = self._load_calendar(sources)
        if self.problems:
            return None, self._sorted_problems()
        assert sources is not None and watchlists is not None
        return (
            RuleSet(
                sources=sources,
                watchlists=watchlists,
                rules=[p.rule for p in rules],
                origins={p.rule.id: (p.doc.path, p.doc.line_of(("rules", p.index))) for p in rules},
                warnings=self.warnings,
                calendar=calendar,
            ),
            [],
        )

    def _sorted_problems(self) -> list[Problem]:
        """File order (sources, watch-lists, rule files by name), then line."""
        order = {str(self.root / SOURCES_FILE): 0, str(self.root / WATCHLISTS_FILE): 1, str(self.root / CALENDAR_FILE): 2}
        return sorted(
            self.problems,
            key=lambda p: (order.get(p.path, 3), p.path if p.path not in order else "", p.line),
        )

    # -- files -------------------------------------------------------------

    def _path(self, name: str) -> Path:
        """The user's file (whatever it is: a FIFO or a broken link is reported, not replaced),
        else the bundled one of the same name."""
        path = self.root / name
        if name in self.contents or os.path.lexists(path):
            return path
        if self.defaults is not None and (self.defaults / name).is_file():
            return self.defaults / name
        return path

    def _doc(self, name: str, *, required: bool) -> YamlDoc | None:
        if name in self.contents:
            return self._given(name, required=required)
        path = self._path(name)
        unreadable = _unreadable(path)
        if unreadable is not None:
            if required or os.path.lexists(path):
                if unreadable == "missing":
                    unreadable = f"missing: a rules directory needs {name}"
                self.problems.append(Problem(path=str(path), line=0, message=unreadable))
            return None
        return self._load_path(path)

    def _given(self, name: str, *, required: bool) -> YamlDoc | None:
        """A file's text from `contents` (None: as if the file were absent)."""
        path = self.root / name
        text = self.contents[name]
        if text is None:
            if self.defaults is not None and (self.defaults / name).is_file():
                return self._load_path(self.defaults / name)
            if required:
                self.problems.append(
                    Problem(path=str(path), line=0, message=f"missing: a rules directory needs {name}")
                )
            return None
        try:
            return parse_yaml(text, str(path))
        except YamlError as exc:
            self.problems.extend(_with_hints(exc.problems))
            return None

    def _validate(
        self, model: type[BaseModel], doc: YamlDoc, keys: set[str], *, shape: str
    ) -> Any | None:
        if doc.data is not None and not isinstance(doc.data, dict):
            what = "a list" if isinstance(doc.data, list) else f"{type(doc.data).__name__} {doc.data!r:.40}"
            self.problems.append(Problem(path=doc.path, line=1, message=f"{shape} (found {what})"))
            return None
        try:
            return model.model_validate(doc.data if doc.data is not None else {})
        except ValidationError as exc:
            self.problems.extend(_in_user_words(validation_problems(exc, doc, known_keys=keys)))
            return None

    def _load_sources(self) -> SourcesFile | None:
        doc = self._doc(SOURCES_FILE, required=True)
        if doc is None:
            return None
        result: SourcesFile | None = self._validate(
            SourcesFile, doc, _keys_of(SourcesFile, FeedSource, PriceSource, HostBudget), shape=_SHAPES[SOURCES_FILE]
        )
        if result is not None:
            self._check_source_ids(result, doc)
        return result

    def _check_source_ids(self, sources: SourcesFile, doc: YamlDoc) -> None:
        """Two sources with one id would share health, ETags and leases: refuse."""
        first: dict[str, str] = {}
        ids = [("feeds", i, f.id) for i, f in enumerate(sources.feeds)]
        ids += [("prices", i, p.source_id) for i, p in enumerate(sources.prices)]
        for section, i, sid in ids:
            key = "id" if section == "feeds" or sources.prices[i].id else "symbol"
            where = f"{doc.path}:{doc.line_of((section, i, key))}"
            if sid in first:
                hint = " (give one of them another `id:`)" if section == "prices" else ""
                self.problems.append(
                    doc.problem(
                        (section, i, key),
                        f"{section}[{i}]: duplicate source id {sid!r}, first defined at {first[sid]}{hint}",
                    )
                )
            else:
                first[sid] = where

    def _load_watchlists(self) -> dict[str, WatchItem] | None:
        doc = self._doc(WATCHLISTS_FILE, required=True)
        if doc is None:
            return None
        parsed: WatchlistsFile | None = self._validate(
            WatchlistsFile, doc, {"watchlists", "title", "why", "tickers"}, shape=_SHAPES[WATCHLISTS_FILE]
        )
        if parsed is None:
            return None
        return {
            name: WatchItem(name=name, title=e.title, why=e.why, tickers=tuple(e.tickers))
            for name, e in parsed.watchlists.items()
        }

    def _load_calendar(self, sources: SourcesFile | None) -> list[CalendarEntry]:
        """`calendar.yaml` (optional; the bundled one when the user has none), its surge
        sources checked against sources.yaml like a rule's `surge:` (warnings; errors in check-rules)."""
        doc = self._doc(CALENDAR_FILE, required=False)
        if doc is None:
            return []
        parsed: CalendarFile | None = self._validate(CalendarFile, doc, set(CALENDAR_KEYS), shape=_SHAPES[CALENDAR_FILE])
        if parsed is None:
            return []
        if sources is not None and not self._bundled(doc):
            known = _source_names(sources)
            for i, entry in enumerate(parsed.events):
                for j, name in enumerate(entry.surge.sources):
                    if name not in known:
                        self.warnings.append(
                            doc.problem(
                                ("events", i, "surge", "sources", j),
                                f"events[{i}].surge.sources[{j}]: unknown source id or tag {name!r} (not in sources.yaml)",
                            )
                        )
        return list(parsed.events)

    def _rule_files(self) -> list[Path]:
        """The user's rule files (as hot reload read them, if given; unreadable ones too, to
        be reported); the bundled ones when the user has none."""
        names = {p.name for p in self.root.iterdir()} | {n for n, t in self.contents.items() if t is not None}
        mine = [
            path
            for path in sorted(self.root / n for n in names)
            if self.contents.get(path.name, "") is not None
            and path.suffix in (".yaml", ".yml")
            and path.name not in _SPECIAL
            and not path.name.startswith((".", "_"))
            and (path.name in self.contents or not path.is_dir())
        ]
        return mine or _rule_files_in(self.defaults)

    def _bundled(self, doc: YamlDoc) -> bool:
        return self.defaults is not None and Path(doc.path).parent == self.defaults

    def _load_rule_files(self) -> tuple[list[_Placed], set[str]]:
        keys = known_keys()
        placed: list[_Placed] = []
        invalid_ids: set[str] = set()
        for path in self._rule_files():
            doc = self._doc(path.name, required=False) if path.parent == self.root else self._load_path(path)
            if doc is None:
                continue
            shape: RuleFileShape | None = self._validate(RuleFileShape, doc, {"rules"}, shape=_RULE_FILE_SHAPE)
            if shape is None:
                continue
            for i, item in enumerate(shape.rules):
                try:
                    rule = RULE_ADAPTER.validate_python(item)
                except ValidationError as exc:
                    self.problems.extend(_rule_problems(exc, item, doc, i, keys))
                    if isinstance(item, dict) and isinstance(item.get("id"), str):
                        invalid_ids.add(item["id"])
                    continue
                placed.append(_Placed(rule, doc, i))
        return placed, invalid_ids

    def _load_path(self, path: Path) -> YamlDoc | None:
        try:
            return load_yaml(path)
        except YamlError as exc:
            self.problems.extend(_with_hints(exc.problems))
            return None

    # -- cross-file checks ------------------------------------------------

    def _check_symbols(self, rules: list[_Placed], sources: SourcesFile) -> None:
        """A price rule on a symbol no enabled source provides would never fire (a warning here;
        `check-rules` reports it as an error, the backtest brings its own prices)."""
        provided = {p.symbol for p in sources.prices if p.enabled}
        for p in rules:
            rule = p.rule
            if self._bundled(p.doc):
                continue  # the bundled rules cover every symbol the bundled sources have
            if isinstance(rule, (ThresholdRule, ChangeRule)) and rule.enabled and rule.symbol not in provided:
                self.warnings.append(
                    p.problem(
                        "symbol",
                        message=f"rules[{p.index}].symbol: no enabled source in sources.yaml provides "
                        f"{rule.symbol!r}, so this rule can never fire (add it under `prices:`)",
                    )
                )

    def _check_ids(self, placed: list[_Placed]) -> list[_Placed]:
        first: dict[str, _Placed] = {}
        kept: list[_Placed] = []
        for p in placed:
            seen = first.get(p.rule.id)
            if seen is not None:
                where = f"{seen.doc.path}:{seen.doc.line_of(('rules', seen.index, 'id'))}"
                self.problems.append(
                    p.problem(
                        "id",
                        message=f"rules[{p.index}].id: duplicate rule id {p.rule.id!r} (first defined at {where})",
                    )
                )
                continue
            first[p.rule.id] = p
            kept.append(p)
        return kept

    def _check_watchlists(self, rules: list[_Placed], watchlists: dict[str, WatchItem]) -> None:
        known = ", ".join(sorted(watchlists)) or "none defined"
        for p in rules:
            for j, name in enumerate(p.rule.watchlist):
                if name not in watchlists:
                    self.problems.append(
                        p.problem(
                            "watchlist",
                            j,
                            message=f"rules[{p.index}].watchlist[{j}]: unknown watch-list {name!r} (known: {known})",
                        )
                    )

    def _check_sources(self, rules: list[_Placed], sources: SourcesFile) -> None:
        known = _source_names(sources)
        for p in rules:
            # An unknown surge source is a warning while loading (the rule still alerts; that
            # name surges nothing) and an error in `check-rules`, like a price rule's missing
            # symbol: the bundled rules name the bundled tags, and a sources.yaml of one's own
            # must not stop them loading.
            surge = p.rule.surge
            for j, name in enumerate(surge.sources if surge is not None and not self._bundled(p.doc) else ()):
                if name not in known:
                    self.warnings.append(
                        p.problem(
                            "surge",
                            "sources",
                            j,
                            message=f"rules[{p.index}].surge.sources[{j}]: unknown source id or tag {name!r} "
                            "(not in sources.yaml)",
                        )
                    )
            for j, name in enumerate(p.rule.sources or ()):
                if name not in known:
                    self.problems.append(
                        p.problem(
                            "sources",
                            j,
                            message=f"rules[{p.index}].sources[{j}]: unknown source id or tag {name!r} "
                            "(not in sources.yaml)",
                        )
                    )

    def _check_confirms(self, rules: list[_Placed], invalid_ids: set[str]) -> None:
        by_id = {p.rule.id: p for p in rules}
        for p in rules:
            rule = p.rule
            if not isinstance(rule, ConfirmRule):
                continue
            for j, ref in enumerate(rule.rules):
                if ref == rule.id:
                    message = "a confirm rule cannot reference itself"
                elif ref not in by_id and ref not in invalid_ids:
                    message = f"unknown rule id {ref!r}"
                else:
                    continue
                self.problems.append(
                    p.problem("rules", j, message=f"rules[{p.index}].rules[{j}]: {message}")
                )
        reported: set[frozenset[str]] = set()
        for p in rules:
            if isinstance(p.rule, ConfirmRule):
                cycle = _find_cycle(p.rule.id, by_id)
                if cycle and frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    self.problems.append(
                        p.problem(
                            "rules",
                            message=f"rules[{p.index}].rules: confirm rules form a cycle: {' -> '.join(cycle)}",
                        )
                    )


def _source_names(sources: SourcesFile) -> set[str]:
    """Every id, symbol and tag a rule may name in `sources:` or `surge.sources:`."""
    known: set[str] = set()
    for feed in sources.feeds:
        known.add(feed.id)
        known.update(feed.tags)
    for price in sources.prices:
        known.update({price.source_id, price.symbol, *price.tags})
    return known


def _find_cycle(start: str, by_id: dict[str, _Placed]) -> list[str] | None:
    """A reference cycle through confirm rules starting at `start`, if any."""

    def refs(rule_id: str) -> list[str]:
        placed = by_id.get(rule_id)
        if placed is None or not isinstance(placed.rule, ConfirmRule):
            return []
        return [r for r in placed.rule.rules if r != rule_id]

    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, trail = stack.pop()
        for nxt in refs(node):
            if nxt == start:
                return [*trail, start]
            if nxt not in visited:
                visited.add(nxt)
                stack.append((nxt, [*trail, nxt]))
    return None


def _rule_files_in(root: Path | None) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    return [
        path
        for path in sorted(root.iterdir())
        if path.suffix in (".yaml", ".yml")
        and path.name not in _SPECIAL
        and not path.name.startswith((".", "_"))
        and path.is_file()
    ]


def _with_hints(problems: Iterable[Problem]) -> list[Problem]:
    """A YAML escape error most likely comes from a regex in double quotes: say so."""
    return [
        p.model_copy(update={"message": p.message + _ESCAPE_HINT}) if "unknown escape character" in p.message else p
        for p in problems
    ]


def _in_user_words(problems: Iterable[Problem]) -> list[Problem]:
    out: list[Problem] = []
    for p in problems:
        message = p.message
        for theirs, ours in _USER_WORDS:
            message = message.replace(theirs, ours)
        out.append(p.model_copy(update={"message": message}) if message != p.message else p)
    return out


# Keys a rule's own cross-field checks read ("exactly one of above or below"): when one of
# them is itself wrong, that check would only repeat the problem in other words.
_CHECKED_TOGETHER = frozenset({"above", "below", "pct", "abs_pct", "window", "any", "all", "none", "rules", "within", "lexicon", "replace_lexicon"})


def _rule_problems(exc: ValidationError, item: Any, doc: YamlDoc, index: int, keys: set[str]) -> list[Problem]:
    """Every problem of one rule at once. A bad key stops pydantic before the rule's own
    checks (e.g. "needs exactly one of above or below"), so the rule is validated once more
    without its unknown keys and its other wrong keys, and what that adds is reported too."""
    problems = _in_user_words(validation_problems(exc, doc, prefix=("rules", index), known_keys=keys))
    if not isinstance(item, dict):
        return problems
    wrong = {e["loc"][1] for e in exc.errors() if len(e["loc"]) >= 2 and e["type"] != "missing"}
    wrong = {k for k in wrong if k in item and k != "type"}
    if not wrong or wrong & _CHECKED_TOGETHER:
        return problems
    try:
        RULE_ADAPTER.validate_python({k: v for k, v in item.items() if k not in wrong})
    except ValidationError as again:
        fresh = [e for e in again.errors() if e["type"] != "missing" or e["loc"][-1] not in wrong]
        if fresh:
            seen = {(p.line, p.message) for p in problems}
            extra = validation_problems(
                ValidationError.from_exception_data(again.title, fresh),  # type: ignore[arg-type]
                doc,
                prefix=("rules", index),
                known_keys=keys,
            )
            problems += [p for p in _in_user_words(extra) if (p.line, p.message) not in seen]
    return problems
