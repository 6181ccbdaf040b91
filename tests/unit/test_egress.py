"""The SSRF guard's rules: URL form, address classification, allow-list, development mode.
IP literals only (nothing is connected to); names go through a fake resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest

from hashsvc.egress import (
    DestinationRefused,
    EgressPolicy,
    HostUnresolved,
    Resolver,
    Target,
    forbidden_reason,
    parse,
    vet,
)

PRODUCTION = EgressPolicy(production=True)
DEVELOPMENT = EgressPolicy(production=False)


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


def check(
    url: str, policy: EgressPolicy = PRODUCTION, dns: dict[str, list[str]] | None = None
) -> Target:
    return asyncio.run(vet(url, policy, fake_dns(dns or {})))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.1.2.3", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.7", "private"),  # documentation (TEST-NET-1)
        ("198.18.0.1", "private"),  # benchmarking
        ("::ffff:127.0.0.1", "loopback (IPv4 embedded"),
        ("::ffff:10.1.2.3", "private (IPv4 embedded"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback (IPv4 embedded"),  # 6to4 of 127.0.0.1
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None
    assert found.startswith(reason)


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14"],
)
def test_public_addresses(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://93.184.215.14/", "http:// or https://"),
        ("http://user@93.184.215.14/", "credentials"),
        ("https://user:pw@93.184.215.14/", "credentials"),
        ("http:///hook", "no host"),
        ("http://2130706433/", "non-canonical"),
        ("http://0x7f.1/", "non-canonical"),
        ("http://0177.0.0.1/", "non-canonical|Invalid IPv4"),
        ("http://127.1/", "non-canonical"),
        ("not a url", "http:// or https://"),
    ],
)
def test_url_form_refused_in_every_mode(url: str, message: str) -> None:
    with pytest.raises(DestinationRefused, match=message):
        parse(url)
    with pytest.raises(DestinationRefused, match=message):
        check(url, DEVELOPMENT)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::]/",
        "http://100.100.100.200/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
    ],
)
def test_forbidden_destinations_refused_in_production(url: str) -> None:
    with pytest.raises(DestinationRefused, match="refused in production mode"):
        check(url, dns={"localhost": ["127.0.0.1"], "api.localhost": ["127.0.0.1"]})


def test_a_name_is_refused_if_any_of_its_addresses_is_forbidden() -> None:
    with pytest.raises(DestinationRefused, match=r"loopback \(127.0.0.1\)"):
        check("https://hooks.example.com/x", dns={"hooks.example.com": ["127.0.0.1"]})
    with pytest.raises(DestinationRefused, match="private"):
        check(
            "https://hooks.example.com/x", dns={"hooks.example.com": ["93.184.215.14", "10.0.0.8"]}
        )
    with pytest.raises(DestinationRefused, match="link-local"):
        check("https://hooks.example.com/x", dns={"hooks.example.com": ["2606:4700::1", "fe80::1"]})


def test_a_public_name_is_pinned_to_its_vetted_address() -> None:
    target = check(
        "https://Hooks.Example.com:8443/cb?x=1", dns={"hooks.example.com": ["93.184.215.14"]}
    )
    assert target.address == "93.184.215.14"
    assert str(target.pinned_url) == "https://93.184.215.14:8443/cb?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.sni_hostname == "hooks.example.com"
    literal = check("http://[2606:4700::1]/cb")
    assert (str(literal.pinned_url), literal.sni_hostname) == ("http://[2606:4700::1]/cb", None)


def test_idn_hosts_are_resolved_in_ascii_form() -> None:
    target = check("https://bücher.example/x", dns={"xn--bcher-kva.example": ["93.184.215.14"]})
    assert target.sni_hostname == "xn--bcher-kva.example"


def test_unresolvable_host() -> None:
    with pytest.raises(HostUnresolved, match="does not resolve"):
        check("https://nowhere.example/x")
    with pytest.raises(HostUnresolved, match="no address"):
        check("https://empty.example/x", dns={"empty.example": []})


def test_allow_list_by_host_or_host_and_port() -> None:
    by_host = EgressPolicy(True, frozenset({"127.0.0.1", "receiver.test"}))
    assert check("http://127.0.0.1:9/x", by_host).address == "127.0.0.1"
    assert check("http://receiver.test/x", by_host, dns={"receiver.test": ["10.1.1.1"]}).address
    by_port = EgressPolicy(True, frozenset({"127.0.0.1:8080", "[::1]:8080"}))
    assert check("http://127.0.0.1:8080/x", by_port).address == "127.0.0.1"
    assert check("http://[::1]:8080/x", by_port).address == "::1"
    with pytest.raises(DestinationRefused):
        check("http://127.0.0.1:8081/x", by_port)
    with pytest.raises(DestinationRefused):
        check("http://127.0.0.1/x", by_port)
    with pytest.raises(DestinationRefused, match="credentials"):  # never bypasses the form rules
        check("http://u@127.0.0.1:8080/x", by_port)


def test_development_mode_allows_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hashsvc.egress"):
        assert check("http://169.254.169.254/", DEVELOPMENT).address == "169.254.169.254"
    assert "allowed in development mode only" in caplog.text
