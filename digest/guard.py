"""Refuse feeds whose host is not on the public internet.

A feed URL, or a redirect, pointing at 127.0.0.1, 10.0.0.0/8, fe80::, a cloud metadata
address or the like would let anyone who can add a feed probe the operator's own network.
Every address a host resolves to is checked (IPv4 and IPv6, with IPv4-mapped, NAT64, 6to4
and Teredo forms unwrapped) when the connection is made, so a DNS answer cannot change
between the check and the use.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class BlockedAddressError(OSError):
    """A feed host resolved to an address that is not on the public internet."""


def address_problem(address: str) -> str | None:
    """Why ``address`` may not be fetched, or None when it is a global address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    return _problem(ip, address)


def _problem(ip: IPAddress, shown: str) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            inner = _problem(embedded, str(embedded))
            return None if inner is None else f"{shown} ({form} of {inner})"
    for test, kind in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a global address"),
    ):
        if test:
            return f"{shown} is {kind}"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped form"
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64 form"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4 form"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo form"
    return None, ""


def check_host(host: str) -> None:
    """Raise ``BlockedAddressError`` when ``host`` is an IP literal that may not be fetched."""
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        return  # a name: checked when it is resolved
    problem = address_problem(literal)
    if problem is not None:
        raise BlockedAddressError(f"refused: {problem}")


class GuardedResolver(AbstractResolver):
    """Resolves like the system does, and refuses hosts with any non-global address."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            problem = address_problem(result["host"])
            if problem is not None:
                raise BlockedAddressError(f"refused: {host} resolves to {problem}")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def make_resolver(allow_private_hosts: bool) -> Any:
    """The resolver for a fetch session: guarded unless the operator allowed private hosts."""
    return ThreadedResolver() if allow_private_hosts else GuardedResolver()
