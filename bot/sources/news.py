"""Feed bytes → `NewsEvent`s: RSS 2.0, RSS 1.0 (RDF) and Atom, however badly served.

fastfeedparser (lxml in recover mode, ~50x faster) parses first; feedparser is the fallback
when it raises or finds nothing. Both always get bytes: given a URL string they would fetch
it themselves, bypassing our size caps and conditional GET.
"""

from __future__ import annotations

import calendar
import codecs
import email.utils
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, ClassVar

import fastfeedparser
import feedparser
from lxml import etree

from bot.models import NewsEvent, stable_id
from bot.sources.config import FeedSource

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 500
MAX_SUMMARY_CHARS = 2_000

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.IGNORECASE)
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.IGNORECASE)
_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_FIRST_TAG = re.compile(rb"<\s*([A-Za-z][A-Za-z0-9:._-]*)")
_FEED_ROOTS = {b"rss", b"feed", b"rdf:rdf", b"rdf", b"channel"}
_SINGLE_BYTE = {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15"}


class FeedError(ValueError):
    """The body is not a feed we can read (HTML page, garbage, empty)."""


def parse_feed(
    body: bytes,
    *,
    source: FeedSource,
    seen_at: datetime,
    content_type: str | None = None,
) -> list[NewsEvent]:
    """Every item of the feed as a `NewsEvent`; of items sharing a GUID the first is kept.

    Dates after `seen_at` are clamped to `seen_at`: a publisher's clock or timezone bug
    must not sort a headline ahead of everything or dodge the backlog window.
    Raises `FeedError` with a one-line reason when nothing usable is in the body.
    """
    if seen_at.tzinfo is None:
        seen_at = seen_at.replace(tzinfo=UTC)
    if not body or not body.strip():
        raise FeedError("empty body: the server sent no feed")
    root = _first_element(body)
    if root in (b"html", b"!doctype", b"head", b"body") or (
        root is None and _looks_like_html(body)
    ):
        where = f" (content-type {content_type.split(';')[0]})" if content_type else ""
        raise FeedError(f"got an HTML page, not a feed{where}")
    if root is None:
        raise FeedError("not XML: no element found in the body")
    if root not in _FEED_ROOTS and not root.endswith((b":rss", b":feed", b":rdf")):
        raise FeedError(f"not a feed: root element <{root[:40].decode('ascii', 'replace')}>")

    xml = _as_utf8(body, content_type)
    entries = _entries_fast(xml)
    if not entries:
        entries = _entries_slow(xml)
    if not entries and not _well_formed(xml):
        raise FeedError("malformed feed: not well-formed XML and no items could be recovered")
    if any(not e.get("guid") and not e.get("link") for e in entries) and not _well_formed(xml):
        # A recovered (broken, often truncated) document: an item with neither GUID nor
        # link is most likely the cut-off tail, and would come back later under a new id.
        entries = [e for e in entries if e.get("guid") or e.get("link")]

    events: dict[str, NewsEvent] = {}
    for entry in entries:
        event = _to_event(entry, source=source, seen_at=seen_at)
        if event is not None and event.id not in events:
            events[event.id] = event
    return list(events.values())


# --- bytes → clean UTF-8 XML -------------------------------------------------------------


def _first_element(body: bytes) -> bytes | None:
    """Lower-cased name of the first element (skipping the prolog, comments, PIs)."""
    head = body[:4096]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            head = head.decode("utf-16", "replace").encode("utf-8")
        except UnicodeError:
            return None
    pos = 0
    while True:
        match = _FIRST_TAG.search(head, pos)
        if match is None:
            if re.search(rb"<!doctype\s+html", head, re.IGNORECASE):
                return b"!doctype"
            return None
        if _inside_comment(head, match.start()):
            pos = match.end()
            continue
        return match.group(1).lower()


def _inside_comment(head: bytes, index: int) -> bool:
    opened = head.rfind(b"<!--", 0, index)
    return opened != -1 and head.find(b"-->", opened, index) == -1


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lower()
    return b"<!doctype html" in head or b"<html" in head


def _as_utf8(body: bytes, content_type: str | None) -> bytes:
    """Decode with the best-supported charset and re-declare the document as UTF-8.

    Declared charsets lie in both directions: "utf-8" over latin-1 bytes (decode fails →
    cp1252/latin-1) and "iso-8859-1" over UTF-8 bytes (decodes, but to mojibake — so valid
    multi-byte UTF-8 wins over a declared single-byte charset).
    """
    text = _decode(body, content_type)
    text = text.lstrip("\ufeff")
    encoded = text.encode("utf-8")
    decl = _XML_DECL.match(encoded)
    if decl:
        fixed = _DECL_ENCODING.sub(b'encoding="utf-8"', decl.group(0))
        encoded = fixed + encoded[decl.end() :]
    return encoded


def _charset_candidates(body: bytes, content_type: str | None) -> list[str]:
    """The HTTP header's charset, then the XML declaration's, then common guesses."""
    candidates: list[str] = []
    match = _CT_CHARSET.search(content_type) if content_type else None
    if match:
        candidates.append(match.group(1))
    decl = _XML_DECL.match(body)
    declared = _DECL_ENCODING.search(decl.group(0)) if decl else None
    if declared:
        candidates.append(declared.group(1).decode("ascii"))
    return [*candidates, "utf-8", "cp1252", "latin-1"]


def _decode(body: bytes, content_type: str | None) -> str:
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", "replace")

    for name in _charset_candidates(body, content_type):
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        if codec in _SINGLE_BYTE and not body.isascii():
            try:
                return body.decode("utf-8")  # a single-byte label over real UTF-8
            except UnicodeError:
                pass
        if codec.startswith("utf-16") or codec.startswith("utf-32"):
            continue  # no BOM: the label is wrong, the bytes are ASCII-compatible
        try:
            return body.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            continue  # also catches labels naming non-text codecs ("hex", "rot13")
    return body.decode("latin-1")  # unreachable: latin-1 decodes any bytes


# --- the two parsers, normalised to plain dicts -----------------------------------------


def _entries_fast(xml: bytes) -> list[Mapping[str, Any]] | None:
    """Entries per fastfeedparser, or None when it cannot parse the document."""
    try:
        parsed = fastfeedparser.parse(
            xml,
            include_content=True,
            include_tags=False,
            include_media=False,
            include_enclosures=False,
        )
    except Exception as exc:  # any failure means "try feedparser"
        log.debug("fastfeedparser failed (%s); falling back to feedparser", exc)
        return None
    entries = parsed.get("entries") if isinstance(parsed, Mapping) else None
    if not isinstance(entries, list):
        return None
    return [
        {
            "guid": e.get("id"),
            "title": e.get("title"),
            "link": e.get("link"),
            "summary": _fast_summary(e),
            "published": _iso(e.get("published")) or _iso(e.get("updated")),
        }
        for e in entries
        if isinstance(e, Mapping)
    ]


def _entries_slow(xml: bytes) -> list[Mapping[str, Any]]:
    """Entries per feedparser (its loose parser copes with some breakage); never raises."""
    try:
        parsed = feedparser.parse(xml, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser failing too is a FeedError later
        log.debug("feedparser failed: %s", exc)
        return []
    entries: list[Mapping[str, Any]] = []
    for e in parsed.get("entries", []):
        entries.append(
            {
                "guid": e.get("id"),
                "title": e.get("title"),
                "link": e.get("link"),
                "summary": e.get("summary") or _first_content(e.get("content")),
                "published": _struct(e.get("published_parsed")) or _struct(e.get("updated_parsed")),
            }
        )
    return entries


def _well_formed(xml: bytes) -> bool:
    """A feed with no items is fine if it is well-formed XML (an empty channel)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        etree.fromstring(xml, parser)
    except Exception:  # lxml raises several types for broken input
        return False
    return True


def _fast_summary(entry: Mapping[str, Any]) -> str | None:
    """fastfeedparser flattens XHTML content with stray spaces ("pause ."); use the markup."""
    content = entry.get("content")
    if (
        isinstance(content, list)
        and content
        and isinstance(content[0], Mapping)
        and content[0].get("type") == "xhtml"
    ):
        return _first_content(content)
    return entry.get("description") or _first_content(content)


def _first_content(content: Any) -> str | None:
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        value = content[0].get("value")
        return value if isinstance(value, str) else None
    return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _struct(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


# --- entry → event ----------------------------------------------------------------------


def _to_event(
    entry: Mapping[str, Any], *, source: FeedSource, seen_at: datetime
) -> NewsEvent | None:
    title = clean_text(_str(entry.get("title")), MAX_TITLE_CHARS)
    summary = clean_text(_str(entry.get("summary")), MAX_SUMMARY_CHARS)
    if not title:
        if not summary:
            return None  # nothing a reader or a rule could use
        title = clean_text(summary, 200)
    if summary == title:
        summary = ""
    link = _http_link(entry.get("link"))
    guid = _str(entry.get("guid")).strip()
    published = entry.get("published")
    if isinstance(published, datetime) and published > seen_at:
        published = seen_at
    return NewsEvent(
        id=stable_id("news", source.id, guid or link or title),
        source=source.id,
        title=title,
        summary=summary,
        url=link,
        published=published if isinstance(published, datetime) else None,
        seen_at=seen_at,
        tags=source.tags,
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


_SPACE = re.compile(r"\s")  # the characters `str.isspace` accepts, found in one C-level scan


def _http_link(value: Any) -> str | None:
    """Only http(s) links survive: a `javascript:` href must never reach a chat message."""
    if not isinstance(value, str):
        return None
    link = value.strip()
    if link.lower().startswith(("http://", "https://")) and _SPACE.search(link) is None:
        return link
    return None


class _TextOnly(HTMLParser):
    """Collects text nodes; block tags become spaces; script/style are dropped."""

    _BLOCK: ClassVar[frozenset[str]] = frozenset({
        "p",
        "br",
        "div",
        "li",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "ul",
        "ol",
        "table",
        "section",
        "article",
        "hr",
    })
    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def clean_text(value: str, limit: int) -> str:
    """HTML → plain text: tags stripped (text kept), entities unescaped, whitespace collapsed."""
    if not value:
        return ""
    if "<" in value or "&" in value:
        parser = _TextOnly()
        try:
            parser.feed(value)
            parser.close()
            value = "".join(parser.parts)
        except Exception:
            pass
    text = " ".join(value.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
