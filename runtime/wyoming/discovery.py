"""Zeroconf (mDNS/DNS-SD) announcement of the Wyoming server, so Home Assistant discovers it: a service
``<name>._wyoming._tcp.local.`` at the server's address and port, the record Home Assistant's Wyoming
integration listens for. Off unless ``WYOMING_ZEROCONF`` is ``on`` (the name is then ``ef-speech-<host>``)
or a name: the protocol has no authentication, and announcing is an operator's choice.

The address announced is the one the server listens on; when that is every address (``0.0.0.0``), the
address of the interface that would carry multicast (what a UDP socket connected to the mDNS group
reports: connecting a UDP socket sends nothing).
"""

from __future__ import annotations

import re
import socket

from loguru import logger

SERVICE_TYPE = "_wyoming._tcp.local."
MDNS_GROUP = "224.0.0.251"


def instance_name(setting: str) -> str:
    """``WYOMING_ZEROCONF`` → the service instance name (``on``: ``ef-speech-<host>``)."""
    if setting == "on":
        return f"ef-speech-{socket.gethostname().split('.')[0]}"[:63]
    return setting


def host_label(name: str) -> str:
    """A service name ("Kitchen speaker") as a DNS host label (``kitchen-speaker``) for the SRV target."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "ef-speech"


def announced_address(host: str) -> str:
    """The IPv4 address to announce for a server listening on ``host``."""
    if host not in ("", "0.0.0.0", "::"):
        try:
            return socket.gethostbyname(host)
        except OSError:
            raise RuntimeError(f"WYOMING_ZEROCONF announces an IPv4 address, and {host!r} has none; let WYOMING_URI "
                               f"listen on 0.0.0.0 or an IPv4 address, or set WYOMING_ZEROCONF=off") from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((MDNS_GROUP, 5353))  # chooses the route and the source address; sends nothing
        return probe.getsockname()[0]


class Announcer:
    """Registers the service on start, withdraws it (a goodbye packet) on stop."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.address = announced_address(host)
        self.port = port
        self._zeroconf = None
        self._info = None

    async def start(self) -> Announcer:
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        self._info = AsyncServiceInfo(
            SERVICE_TYPE, f"{self.name}.{SERVICE_TYPE}", port=self.port,
            addresses=[socket.inet_aton(self.address)], server=f"{host_label(self.name)}.local.",
            properties={"program": "ef-speech"})
        self._zeroconf = AsyncZeroconf(interfaces=[self.address])  # on the announced address's interface only
        await self._zeroconf.async_register_service(self._info)  # (announced by a task, in the background)
        logger.info("wyoming announced over zeroconf as {!r} at {}:{}", self.name, self.address, self.port)
        return self

    async def stop(self) -> None:
        if self._zeroconf is not None:
            goodbye = await self._zeroconf.async_unregister_service(self._info)
            await goodbye  # the goodbye packets are sent by a task: closing first would cancel them
            await self._zeroconf.async_close()
            self._zeroconf = None
            logger.info("wyoming zeroconf announcement {!r} withdrawn", self.name)
