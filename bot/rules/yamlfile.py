"""YAML that remembers the line of every key and list item.

Rule files are edited by hand, so every problem must point at `path:line`.
`load_yaml` composes the node tree with a SafeLoader and builds plain Python data
alongside a map from location (`("rules", 0, "any", 2)`) to 1-based line.
`validation_problems` turns a pydantic ValidationError into such problems by
walking each error's `loc` through that map.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

# Nodes built beyond the document's own: what aliases may add. A rule file reuses a block
# a few times; a "billion laughs" file asks for 9**9 (46 s and 3 GB before this budget).
ALIAS_EXPANSION_BUDGET = 10_000


class Problem(BaseModel):
    """One thing wrong with a rules directory, at a file and line (0: the file as a whole)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class YamlDoc:
    """Parsed data plus the line of every location in it."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """Line of `loc`, or of its nearest known parent (1 for the document)."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(path=self.path, line=self.line_of(loc), message=message)


class YamlError(Exception):
    """The file could not be read or parsed; carries its problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Parse one YAML document. Raises YamlError (syntax, encoding, duplicate keys)."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(
            [Problem(path=shown, line=1, message=f"not UTF-8 text: {exc.reason}")]
        ) from None
    except OSError as exc:
        raise YamlError(
            [Problem(path=shown, line=0, message=f"cannot read: {exc.strerror}")]
        ) from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, path: str) -> YamlDoc:
    """Parse YAML text (see `load_yaml`)."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # raised while reading, before any parsing
        line = text[: max(exc.position, 0)].count("\n") + 1
        raise YamlError(
            [Problem(path=path, line=line, message=f"control character U+{int(exc.character):04X} is not allowed in YAML")]
        ) from None
    try:
        node = loader.get_single_node()
        doc = YamlDoc(path=path, data=None)
        problems: list[Problem] = []
        if node is not None:
            doc.data = _Builder(loader, doc, problems).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "invalid YAML"
        context = ""
        if exc.context and exc.problem:
            started = exc.context_mark
            at = (
                f" at line {started.line + 1}"
                if started is not None and started.line + 1 != line
                else ""
            )
            context = f" ({exc.context}{at})"
        raise YamlError(
            [Problem(path=path, line=line, message=f"YAML syntax error: {what}{context}")]
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError([Problem(path=path, line=1, message=f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise YamlError(problems)
    return doc


class _Builder:
    """Builds plain data from nodes, recording lines; refuses duplicate keys."""

    def __init__(self, loader: yaml.SafeLoader, doc: YamlDoc, problems: list[Problem]) -> None:
        self.loader = loader
        self.doc = doc
        self.problems = problems
        self._active: set[int] = set()
        self._built: set[int] = set()
        self._repeats = 0
        self._site = 1  # line of the innermost node built for the first time: where aliases are used

    def build(self, node: Node, loc: Loc) -> Any:
        if id(node) in self._active:
            self.problems.append(self.doc.problem(loc, "recursive YAML alias"))
            return None
        first = self._first_time(node)
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node, deep=True)
        outer_site = self._site
        if first:
            self._site = node.start_mark.line + 1
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items: list[Any] = []
                for i, item in enumerate(node.value):
                    self.doc.lines[(*loc, i)] = item.start_mark.line + 1
                    items.append(self.build(item, (*loc, i)))
                return items
            if isinstance(node, MappingNode):
                self.loader.flatten_mapping(node)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = self.build(key_node, loc)
                    line = key_node.start_mark.line + 1
                    try:
                        hash(key)
                    except TypeError:
                        self.problems.append(
                            Problem(path=self.doc.path, line=line, message="unhashable mapping key")
                        )
                        continue
                    if key in out:
                        where = format_loc((*loc, key))
                        self.problems.append(
                            Problem(
                                path=self.doc.path,
                                line=line,
                                message=f"{where}: duplicate key {key!r}",
                            )
                        )
                        continue
                    self.doc.lines[(*loc, key)] = line
                    out[key] = self.build(value_node, (*loc, key))
                return out
            return self.loader.construct_object(node, deep=True)
        finally:
            self._active.discard(id(node))
            self._site = outer_site

    def _first_time(self, node: Node) -> bool:
        """Count nodes built again through aliases; stop at once beyond the budget."""
        if id(node) not in self._built:
            self._built.add(id(node))
            return True
        self._repeats += 1
        if self._repeats > ALIAS_EXPANSION_BUDGET:
            message = (
                f"YAML aliases expand to more than {ALIAS_EXPANSION_BUDGET:,} nodes "
                "(an alias bomb?); write the repeated parts out or reuse less"
            )
            raise YamlError([Problem(path=self.doc.path, line=self._site, message=message)])
        return False


def format_loc(loc: Loc) -> str:
    """`("rules", 0, "any", 2)` -> `rules[0].any[2]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _resolve(data: Any, loc: Iterable[str | int]) -> tuple[Loc, Any]:
    """Follow a pydantic loc through the data, skipping union tags and validator names."""
    found: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:  # noqa: SIM114 - typed per branch
            current = current[part]
            found.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            found.append(part)
    return tuple(found), current


def validation_problems(
    exc: ValidationError,
    doc: YamlDoc,
    *,
    prefix: Loc = (),
    known_keys: Iterable[str] = (),
) -> list[Problem]:
    """One `path:line: where: message` problem per pydantic error."""
    known = sorted(set(known_keys))
    data = doc.data
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *err["loc"])
        resolved, value = _resolve(data, loc)
        kind = err["type"]
        where = format_loc(resolved)
        if kind == "missing":
            message = f"{where}: missing required key {loc[-1]!r}"
        elif kind == "extra_forbidden":
            key = loc[-1]
            hint = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
            message = f"{format_loc(resolved[:-1])}: unknown key {key!r}" + (
                f" (did you mean {hint[0]!r}?)" if hint else ""
            )
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            message = f"{where}.type: unknown rule type {ctx.get('tag')!r} (expected one of: {ctx.get('expected_tags')})"
            resolved = (*resolved, "type")
        elif kind == "union_tag_not_found":
            message = f"{where}: missing required key 'type'"
        else:
            text = err["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and isinstance(
                value, (str, int, float, bool)
            ):
                text += f" (got {value!r})"
            message = f"{where}: {text}"
        problems.append(Problem(path=doc.path, line=doc.line_of(resolved), message=message))
    return problems
