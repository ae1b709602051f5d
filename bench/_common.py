"""Shared helpers for the benchmarks: the machine, a trade-war vocabulary, rules and feeds.

Not a benchmark itself. Everything is deterministic for a given seed so runs compare.
"""

from __future__ import annotations

import os
import platform
import random
import resource
import sys
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_name, None)

from tests.support.botproc import RULE_FILE  # noqa: E402  (after the sys.path line above)

PG_SERVER = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

TARIFF_RULE = RULE_FILE
"""One match rule on any tariff headline (the tests' `RULE_FILE`): the latency benches (latency.py,
push.py) time the path, not the rules."""

ACTORS = [
    "US", "China", "Beijing", "Washington", "Trump", "Xi", "Commerce", "USTR", "Treasury",
    "MOFCOM", "Lutnick", "Bessent", "Greer", "EU", "Mexico", "Canada", "Japan", "Vietnam",
    "Korea", "India", "Taiwan", "WTO", "Fed", "Congress", "White House", "Pentagon",
]
ACTIONS = [
    "tariff", "tariffs", "duties", "levies", "sanctions", "export controls", "export ban",
    "entity list", "retaliation", "countermeasures", "trade truce", "trade talks", "trade deal",
    "framework agreement", "de minimis", "reciprocal tariffs", "anti-dumping", "quota",
    "embargo", "blacklist", "investment curbs", "chip restrictions", "rare earth curbs",
    "licence requirements", "price controls", "currency manipulation", "yuan devaluation",
]
GOODS = [
    "steel", "aluminum", "chips", "semiconductors", "soybeans", "pork", "autos", "EVs",
    "batteries", "solar panels", "rare earths", "gallium", "germanium", "antimony", "graphite",
    "lithium", "magnets", "pharmaceuticals", "lumber", "copper", "smartphones", "drones",
    "shipbuilding", "LNG", "crude", "wheat", "corn", "beef", "textiles", "furniture",
]
VERBS = [
    "imposes", "raises", "cuts", "extends", "pauses", "suspends", "threatens", "weighs",
    "announces", "delays", "lifts", "expands", "signs", "rejects", "hails", "slams", "eyes",
    "targets", "probes", "warns of", "vows", "drops", "doubles", "halves",
]
FILLER = [
    "after", "talks", "in", "Geneva", "London", "Stockholm", "sources", "say", "report",
    "markets", "rally", "slump", "stocks", "futures", "yields", "dollar", "officials", "new",
    "round", "of", "on", "over", "amid", "ahead", "deadline", "week", "billion", "percent",
    "%", "analysts", "investors", "brace", "for", "impact", "while", "as", "with", "plan",
]
_SYL = ["ka", "lo", "mi", "ren", "tor", "vex", "zan", "qui", "bel", "dor", "fen", "gal", "hu", "jin", "wei", "xin"]
_SUFFIX = ["Tech", "Chem", "Metals", "Motors", "Semi", "Agri", "Energy", "Shipping", "Steel", "Bio"]
# 640 company names: what desks actually write rules about (and what headlines mention now and then).
COMPANIES = [f"{(a + b).capitalize()}{c}" for a in _SYL for b in _SYL[:4] for c in _SUFFIX]


def machine() -> str:
    """nproc, memory, CPU model, Python version: one line for the results table."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {platform.python_version()}"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100), linear between the two nearest samples."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def headlines(n: int, *, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(ACTORS), rng.choice(VERBS), rng.choice(ACTIONS), "on", rng.choice(GOODS)]
        parts += rng.sample(FILLER, rng.randint(2, 7))
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts)), rng.choice(COMPANIES))
        out.append(" ".join(parts))
    return out


def rule_terms(n: int, *, seed: int = 11) -> list[dict[str, list[str]]]:
    """`n` match-rule conditions, like a desk's: 70 % watch companies (any of 1–3 names, sometimes
    with an action), 30 % watch topics (any of 2–4 actions/goods, usually with an actor);
    some phrases, some prefixes (`steel*`), some `none` exclusions."""
    rng = random.Random(seed)
    rules = []
    for _ in range(n):
        if rng.random() < 0.7:
            any_ = rng.sample(COMPANIES, rng.randint(1, 3))
            cond: dict[str, list[str]] = {"any": any_}
            if rng.random() < 0.4:
                cond["all"] = [rng.choice(ACTIONS)]
        else:
            any_ = []
            for term in rng.sample(ACTIONS + GOODS, rng.randint(2, 4)):
                if " " not in term and rng.random() < 0.3 and len(term) > 4:
                    term = term[: max(4, len(term) - 2)] + "*"
                any_.append(term)
            cond = {"any": any_}
            if rng.random() < 0.8:
                cond["all"] = [rng.choice(ACTORS)]
        if rng.random() < 0.15:
            cond["none"] = [rng.choice(FILLER[:20])]
        rules.append(cond)
    return rules


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + t.replace('"', '\\"') + '"' for t in items) + "]"


def write_rules_dir(folder: Path, *, rules: int, feeds: list[tuple[str, str]] = (), interval: int = 300) -> Path:
    """A rules folder: `feeds` (id, url) in sources.yaml, `rules` generated match rules."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["feeds:"] if feeds else ["feeds: []"]
    for fid, url in feeds:
        lines += [f"  - id: {fid}", f'    url: "{url}"', f"    interval: {interval}"]
    (folder / "sources.yaml").write_text("\n".join(lines) + "\n")
    (folder / "watchlists.yaml").write_text("watchlists: {}\n")
    out = ["rules:"]
    for i, cond in enumerate(rule_terms(rules)):
        out += [f"  - id: r{i:04d}", "    type: match", f"    description: generated rule {i}",
                "    severity: info", "    key: title", "    fields: [title]"]
        for k, v in cond.items():
            out.append(f"    {k}: {_yaml_list(v)}")
    (folder / "rules.yaml").write_text("\n".join(out) + "\n")
    return folder


def rss(titles: list[str], *, tag: str = "x", now: datetime | None = None) -> bytes:
    now = now or datetime.now(UTC)
    items = "".join(
        f"<item><title>{xml_escape(t)}</title><link>https://news.example.com/{tag}/{n}</link>"
        f'<guid isPermaLink="false">{tag}-{zlib.crc32(t.encode()):08x}</guid>'
        f"<pubDate>{format_datetime(now - timedelta(minutes=n), usegmt=True)}</pubDate></item>"
        for n, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench</title>'
        f"<link>https://news.example.com/</link><description>b</description>{items}</channel></rss>"
    ).encode()


async def pg_reachable() -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    from tests.support.databases import _unreachable_reason

    return await _unreachable_reason(PG_SERVER)


class FeedFolderServer:
    """`bench/_feedsrv.py` on a folder, in a subprocess: `with FeedFolderServer(folder) as base_url:`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc = None

    def __enter__(self) -> str:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "_feedsrv.py"), str(self.folder)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


def write_feeds(folder: Path, count: int, *, items: int = 20) -> list[str]:
    """`count` RSS files of `items` headlines each under `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    titles = headlines(count * items, seed=3)
    paths = []
    for i in range(count):
        name = f"feed{i:04d}.xml"
        (folder / name).write_bytes(rss(titles[i * items:(i + 1) * items], tag=f"f{i}"))
        paths.append("/" + name)
    return paths


def repo_rules_with(folder: Path, feeds: list[tuple[str, str]], *, interval: int = 300) -> Path:
    """The repository's rules/ copied to `folder`, with `feeds` as the only sources."""
    import shutil

    shutil.copytree(REPO / "rules", folder)
    lines = ["feeds:"]
    for fid, url in feeds:
        lines += [f"  - id: {fid}", f'    url: "{url}"', f"    interval: {interval}"]
    (folder / "sources.yaml").write_text("\n".join(lines) + "\n")
    return folder
