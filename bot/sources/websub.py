"""WebSub (W3C Recommendation) on the wire: hub discovery and push signatures; no I/O here.

Discovery: a feed names its hub with `Link: <…>; rel="hub"` (HTTP header) or a
`<link rel="hub" href="…"/>` in the feed (Atom, or atom:link inside RSS); `rel="self"`
names the topic URL to subscribe to. Header links win over the body's (the spec's order).
Only the feed's own head is read — links inside items are an item's, not the feed's.

Signatures: a hub signs each push with the secret we gave it, as
`X-Hub-Signature: sha256=<hex HMAC of the body>` (sha1, sha256, sha384 or sha512).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from pydantic import BaseModel, ConfigDict

SIGNATURE_METHODS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

_LINK_VALUE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL_PARAM = re.compile(r""";\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)
_ITEM_TAGS = frozenset({"item", "entry"})


class HubLink(BaseModel):
    """Where to subscribe (`hub`) and to what (`topic`)."""

    model_config = ConfigDict(frozen=True)

    hub: str
    topic: str


def discover_hub(body: bytes, *, link_header: str | None, url: str) -> HubLink | None:
    """The hub a fetched feed advertises, or None. `url` is the URL the body came from
    (after redirects): relative links resolve against it, and it is the topic when the
    feed names no `self`. Hubs that are not http(s) are ignored."""
    rels = links_from_header(link_header or "")
    if "hub" not in rels:
        rels = links_from_feed(body)
    hub = rels.get("hub")
    if hub is None:
        return None
    hub = urljoin(url, hub)
    topic = urljoin(url, rels.get("self") or url)
    if not (_is_http(hub) and _is_http(topic)):
        return None
    return HubLink(hub=hub, topic=topic)


def links_from_header(value: str) -> dict[str, str]:
    """`rel → URL` from an HTTP Link header (first URL per rel; a rel may list several)."""
    found: dict[str, str] = {}
    for match in _LINK_VALUE.finditer(value):
        target, params = match.group(1).strip(), match.group(2)
        for rel in _REL_PARAM.finditer(params):
            for name in (rel.group(1) or rel.group(2) or "").lower().split():
                found.setdefault(name, target)
    return found


def links_from_feed(body: bytes) -> dict[str, str]:
    """`rel → href` of the `<link>` elements in the feed's head (before its first item),
    whatever their namespace; a broken document is read as far as it goes."""
    found: dict[str, str] = {}
    try:
        parser = etree.iterparse(
            io.BytesIO(body), events=("start",), recover=True, resolve_entities=False, no_network=True, huge_tree=False
        )
        for _, element in parser:
            tag = element.tag
            if not isinstance(tag, str):
                continue  # a comment or processing instruction
            local = etree.QName(tag).localname.lower()
            if local in _ITEM_TAGS:
                break
            if local != "link":
                continue
            href, rel = element.get("href"), element.get("rel")
            if href and rel:
                for name in rel.lower().split():
                    found.setdefault(name, href.strip())
    except (etree.LxmlError, ValueError):
        pass  # whatever was read before the break stands
    return found


def signature_ok(header: str | None, body: bytes, secret: str) -> bool:
    """True when `X-Hub-Signature` is `method=hex` with a known method and the HMAC of
    `body` under `secret` matches (constant-time). Missing or malformed: False."""
    if not header:
        return False
    method, sep, given = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if not sep or digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
