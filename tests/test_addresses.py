"""The one client-address rule, on ASGI scopes (no traffic anywhere): forwarded headers count only from
trusted proxies, right to left; IPv4-mapped IPv6 is the IPv4 address."""

from __future__ import annotations

import pytest

from runtime.security.addresses import AddressRule, client_address, inside, is_https, parse_address, parse_networks
from runtime.settings import Settings, SettingsError

LAN = parse_networks(["127.0.0.0/8", "::1/128", "192.168.1.0/24"], "ADMIN_ALLOWED_CIDRS")


def scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict:
    return {"type": "http", "client": (peer, 50000), "scheme": scheme,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}


def resolve(rule: AddressRule, s: dict) -> str:
    rule.resolve(s)
    return client_address(s)


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say():
    rule = AddressRule()
    s = scope("203.0.113.9", ("X-Forwarded-For", "192.168.1.10"), ("X-Real-IP", "192.168.1.10"),
              ("X-Forwarded-Proto", "https"))
    assert resolve(rule, s) == "203.0.113.9"
    assert not inside(parse_address(client_address(s)), LAN)
    assert is_https(s) is False


def test_a_trusted_proxy_forwards_the_client_right_to_left():
    rule = AddressRule(parse_networks(["10.0.0.0/24"], "TRUSTED_PROXIES"))
    # nginx appends the address it saw: the left part is whatever the client wrote, so it is not believed
    spoofed = scope("10.0.0.2", ("X-Forwarded-For", "192.168.1.10, 203.0.113.9"))
    assert resolve(rule, spoofed) == "203.0.113.9"
    # two trusted hops are skipped; the first untrusted one is the client
    chained = scope("10.0.0.2", ("X-Forwarded-For", "192.168.1.77, 10.0.0.5"), ("X-Forwarded-Proto", "https"))
    assert resolve(rule, chained) == "192.168.1.77" and is_https(chained)
    # several X-Forwarded-For headers are one list, in order
    split = scope("10.0.0.2", ("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "192.168.1.5"))
    assert resolve(rule, split) == "192.168.1.5"
    assert resolve(rule, scope("10.0.0.2", ("X-Real-IP", "192.168.1.6"))) == "192.168.1.6"
    assert resolve(rule, scope("10.0.0.2")) == "10.0.0.2"  # the proxy itself (a health check)
    # garbage where the client should be: unknown, which no CIDR contains
    garbage = scope("10.0.0.2", ("X-Forwarded-For", "not-an-address, 10.0.0.5"))
    assert resolve(rule, garbage) == "unknown" and not inside(parse_address("unknown"), LAN)
    # a peer outside TRUSTED_PROXIES is not believed, whatever it sends
    assert resolve(rule, scope("10.0.1.2", ("X-Forwarded-For", "192.168.1.10"))) == "10.0.1.2"


def test_ipv4_mapped_ipv6_is_the_ipv4_address_in_peers_headers_and_cidrs():
    rule = AddressRule(parse_networks(["::ffff:10.0.0.0/120"], "TRUSTED_PROXIES"))
    assert resolve(rule, scope("::ffff:10.0.0.2", ("X-Forwarded-For", "::ffff:192.168.1.20"))) == "192.168.1.20"
    assert inside(parse_address("::ffff:127.0.0.1"), LAN)
    assert inside(parse_address("::1"), LAN) and not inside(parse_address("::2"), LAN)
    assert parse_address("[2001:db8::1]:443") == parse_address("2001:db8::1")
    assert str(parse_address("192.0.2.1:8080")) == "192.0.2.1"


@pytest.mark.parametrize("var", ["ADMIN_ALLOWED_CIDRS", "TRUSTED_PROXIES"])
def test_bad_cidrs_fail_at_start_up_naming_the_variable(var):
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: "192.168.1.0/24,lan"})
    assert Settings.from_env({}).admin_allowed_cidrs == ("127.0.0.0/8", "::1/128", "192.168.1.0/24")
    assert Settings.from_env({}).trusted_proxies == ()
