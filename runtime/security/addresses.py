"""The one rule for who is calling from where: the client address and whether the request came over HTTPS.

The direct peer (the ASGI ``client``) is the client, unless it is one of ``TRUSTED_PROXIES``: then the
client is read from ``X-Forwarded-For``, right to left, skipping every hop that is itself a trusted proxy
(the first untrusted hop is the client: anything left of it could be written by the client), or else from
``X-Real-IP``; and ``X-Forwarded-Proto: https`` says the request arrived over TLS. From any other peer those
headers are ignored, so they cannot be spoofed. IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) count as
the IPv4 address, in both the peer and the headers.

uvicorn's own proxy-header handling is switched off (``proxy_headers=False`` in ``runtime.cli``): with it,
uvicorn would rewrite the peer from ``X-Forwarded-For`` for 127.0.0.1 by default, before this rule runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCOPE_CLIENT = "ef.client"  # the client address (str), set by ``AddressRule.resolve``
SCOPE_HTTPS = "ef.https"  # bool


def parse_address(text: str) -> IPAddress | None:
    """An address as the rule compares it (IPv4-mapped IPv6 as IPv4), or None when ``text`` is not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443", as some proxies write IPv6
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:51234"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(entries: Iterable[str], setting: str) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) from a setting; a bad entry raises ``ValueError`` naming ``setting``."""
    networks = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{setting} must list addresses or CIDRs such as 192.168.1.0/24, got {entry!r}") from None
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and \
                network.network_address.ipv4_mapped is not None:  # ::ffff:10.0.0.0/104 means 10.0.0.0/8
            network = ipaddress.ip_network(f"{network.network_address.ipv4_mapped}/{network.prefixlen - 96}")
        networks.append(network)
    return tuple(networks)


def inside(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


class AddressRule:
    def __init__(self, trusted_proxies: tuple[IPNetwork, ...] = ()) -> None:
        self.trusted = trusted_proxies

    def resolve(self, scope: dict) -> str:
        """Set ``scope["ef.client"]`` (the client address, or "unknown") and ``scope["ef.https"]``; returns the
        address. Cheap when there are no trusted proxies (the default): one parse of the peer."""
        peer_text = scope["client"][0] if scope.get("client") else ""
        peer = parse_address(peer_text) if peer_text else None
        https = scope.get("scheme") == "https"
        client = peer
        if self.trusted and inside(peer, self.trusted):
            forwarded, real_ip, proto = _headers(scope)
            if forwarded:
                client = self._from_forwarded(forwarded)
            elif real_ip:
                client = parse_address(real_ip)
            if proto:
                https = proto.split(",")[0].strip().lower() == "https"
        scope[SCOPE_CLIENT] = str(client) if client is not None else "unknown"
        scope[SCOPE_HTTPS] = https
        return scope[SCOPE_CLIENT]

    def _from_forwarded(self, values: list[str]) -> IPAddress | None:
        """None ("unknown": inside no CIDR) when the chain is garbage where the client should be."""
        hops = [hop.strip() for value in values for hop in value.split(",")]
        last: IPAddress | None = None
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return None
            last = address
            if not inside(address, self.trusted):
                return address
        return last  # every hop a trusted proxy: the leftmost is the client


def client_address(scope: dict) -> str:
    """The client address the rule computed for this request (``AddressRule.resolve`` ran at the edge)."""
    found = scope.get(SCOPE_CLIENT)
    if found is not None:
        return found
    client = scope.get("client")
    address = parse_address(client[0]) if client else None
    return str(address) if address is not None else "unknown"


def is_https(scope: dict) -> bool:
    return bool(scope.get(SCOPE_HTTPS, scope.get("scheme") == "https"))


def _headers(scope: dict) -> tuple[list[str], str, str]:
    forwarded: list[str] = []
    real_ip = proto = ""
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-real-ip":
            real_ip = value.decode("latin-1")
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1")
    return forwarded, real_ip, proto
