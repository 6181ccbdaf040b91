"""Which outbound URLs the service may call (webhooks): the SSRF guard.

A URL must be ``http``/``https`` without credentials, with a host in canonical form. Its host is
resolved once and *every* address checked: in production mode loopback, link-local (cloud
metadata at 169.254.169.254), private, carrier-grade NAT, unspecified, multicast, reserved and
other non-global addresses (also when embedded in IPv6: IPv4-mapped, NAT64, 6to4) and
``localhost`` names are refused unless the host is in ``webhook_allowed_hosts``; development mode
allows them with a warning. The caller connects to the vetted address (``Target.pinned_url``),
not to the name again, so DNS rebinding between the check and the connection cannot move it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from hashsvc.config import Settings
from hashsvc.errors import BadRequest

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; the default asks the system through ``loop.getaddrinfo``."""

DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class DestinationRefused(BadRequest):
    """The URL may not be called (bad form, or a forbidden address in production mode)."""

    code = "webhook_url_refused"


class HostUnresolved(DestinationRefused):
    """The host has no address right now (possibly a transient DNS failure)."""

    code = "webhook_host_unresolved"


@dataclass(frozen=True)
class EgressPolicy:
    production: bool
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> EgressPolicy:
        hosts = (host.strip().lower().rstrip(".") for host in settings.webhook_allowed_hosts)
        return cls(settings.production, frozenset(hosts))

    def allows(self, url: httpx.URL) -> bool:
        """Whether the allow-list names this URL's host, or its ``host:port``."""
        host = _host(url)
        netloc = f"[{host}]" if ":" in host else host
        return bool({host, f"{netloc}:{_port(url)}"} & self.allowed_hosts)


@dataclass(frozen=True)
class Target:
    """A vetted URL and the address to connect to."""

    url: httpx.URL
    address: str

    @property
    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the vetted address (send ``host_header`` too)."""
        return self.url.copy_with(host=self.address)

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    @property
    def sni_hostname(self) -> str | None:
        """Name for TLS SNI and certificate checks; ``None`` when the host is an IP literal."""
        return None if _ip_literal(_host(self.url)) else _host(self.url)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address of ``host``, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden_reason(address: IPAddress) -> str | None:
    """Why production mode refuses this address, or ``None`` for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return f"{reason} (IPv4 embedded in IPv6)" if reason else None
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),  # 169.254.169.254: cloud metadata
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "carrier-grade NAT"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally routable"),
    )
    return next((reason for hit, reason in checks if hit), None)


def parse(url: str) -> httpx.URL:
    """The URL if its form is acceptable in any mode; raises ``DestinationRefused``."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DestinationRefused(f"invalid webhook URL: {exc}") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise DestinationRefused("the webhook URL must be http:// or https://")
    if parsed.userinfo:
        raise DestinationRefused("the webhook URL must not carry credentials (user@host)")
    host = _host(parsed)
    if not host:
        raise DestinationRefused("the webhook URL has no host")
    if _ip_literal(host) is None and _loose_ipv4(host):
        raise DestinationRefused(
            f"the webhook host {host!r} is a non-canonical IP address; write it as a.b.c.d"
        )
    return parsed


async def vet(url: str, policy: EgressPolicy, resolver: Resolver = system_resolver) -> Target:
    """Parse, resolve once and check every address; the returned target pins the first one."""
    parsed = parse(url)
    host = _host(parsed)
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, _port(parsed))
        except OSError as exc:
            raise HostUnresolved(f"the webhook host {host!r} does not resolve: {exc}") from exc
        if not addresses:
            raise HostUnresolved(f"the webhook host {host!r} has no address")
    problems = _problems(host, addresses)
    if problems and not policy.allows(parsed):
        message = f"the webhook host {host!r} is {'; '.join(problems)}"
        if policy.production:
            raise DestinationRefused(f"{message}: refused in production mode")
        logger.warning("%s: allowed in development mode only", message)
    return Target(parsed, addresses[0])


async def check_registration(
    url: str, settings: Settings, resolver: Resolver = system_resolver
) -> None:
    """Refuse a webhook URL at registration; development mode accepts a host that does not
    resolve yet (delivery checks again anyway)."""
    try:
        await vet(url, EgressPolicy.of(settings), resolver)
    except HostUnresolved as exc:
        if settings.production:
            raise
        logger.warning("%s (accepted in development mode)", exc.message)


def _problems(host: str, addresses: Iterable[str]) -> list[str]:
    problems = []
    if host == "localhost" or host.endswith(".localhost"):
        problems.append("a localhost name")
    for text in addresses:
        reason = forbidden_reason(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason:
            problems.append(f"{reason} ({text})")
    return problems


def _host(url: httpx.URL) -> str:
    """The ASCII (IDNA) host, lower case, without a trailing dot or IPv6 brackets."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


def _port(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS[url.scheme]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loose_ipv4(host: str) -> bool:
    """Forms that ``inet_aton`` reads as an IPv4 address: ``2130706433``, ``0x7f.1``, ``127.1``."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True
