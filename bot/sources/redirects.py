"""Which redirects a source may follow: one decision, whoever runs the redirect loop.

A feed that answers `302 Location: http://169.254.169.254/...` must not make
Readout fetch (and alert on) internal addresses every poll. The policy:

* `same-host` (the default): only to the same host and port as the configured
  URL (http → https on the default ports counts as the same host).
* `any` (`follow_redirects: any` on the source in sources.yaml): any host...
* ...but never to a loopback, link-local, private, reserved or multicast
  address — unless the source itself is configured on one (a feed on
  127.0.0.1 or on the office LAN may redirect within it; the tests' feeds
  live on 127.0.0.1 and redirect there).

Host names are resolved to check where they point; the connection that follows
resolves them again, so a DNS answer that changes in between (rebinding) is not
caught here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import urlsplit

RedirectPolicy = Literal["same-host", "any"]
Resolver = Callable[[str], Awaitable[list[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


async def resolve_host(host: str) -> list[str]:
    """The addresses a host name resolves to; [] when it does not resolve."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


async def _addresses(host: str, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]  # an IP literal is its own address
    except ValueError:
        return await resolve(host)


def is_internal(address: str) -> bool:
    """Loopback, link-local, private, reserved, multicast or unspecified."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _host_port(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def _same_host(origin: str, target: str) -> bool:
    o_scheme, o_host, o_port = _host_port(origin)
    t_scheme, t_host, t_port = _host_port(target)
    if o_host != t_host:
        return False
    if o_port == t_port:
        return True
    upgrade = o_scheme == "http" and t_scheme == "https"
    return upgrade and o_port == _DEFAULT_PORTS["http"] and t_port == _DEFAULT_PORTS["https"]


async def redirect_refusal(
    origin: str, target: str, *, policy: RedirectPolicy, resolve: Resolver = resolve_host
) -> str | None:
    """Why the source configured at `origin` may not follow a redirect to `target`, or None."""
    if _same_host(origin, target):
        return None
    _, t_host, _ = _host_port(target)
    if policy != "any":
        return (
            f"redirect to another host ({t_host}) refused; "
            "set `follow_redirects: any` on the source to allow it"
        )
    target_addresses = await _addresses(t_host, resolve)
    internal = [a for a in target_addresses if is_internal(a)]
    if not internal:
        return None
    origin_addresses = await _addresses(_host_port(origin)[1], resolve)
    if origin_addresses and all(is_internal(a) for a in origin_addresses):
        return None  # a source configured on an internal address may redirect within
    return f"redirect to internal address {internal[0]} ({t_host}) refused"
