"""Run inside a network namespace of its own (``tests/integration/test_wyoming_zeroconf.py``): a service
announcing its Wyoming server over zeroconf, found the way Home Assistant finds one (a browser for
``_wyoming._tcp.local.``, then the Wyoming client at the address and port announced); then the service
stops and the browser sees the service withdrawn. Prints what it saw as JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from tests.support import ServiceProcess

TYPE = "_wyoming._tcp.local."


async def main(data_dir: Path, name: str) -> dict:
    seen: dict = {"added": [], "removed": []}
    changed = asyncio.Event()

    def on_change(zeroconf, service_type, name, state_change) -> None:
        seen["added" if state_change is ServiceStateChange.Added else "removed"].append(name)
        changed.set()

    zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    browser = AsyncServiceBrowser(zc.zeroconf, TYPE, handlers=[on_change])
    service = ServiceProcess(data_dir, env={"ENGINES": "espeak", "DEFAULT_VOICE": "espeak:en-us",
                                            "WYOMING_ZEROCONF": name}).start().wait_ready(timeout=60)
    try:
        await asyncio.wait_for(changed.wait(), 20)
        info = AsyncServiceInfo(TYPE, seen["added"][0])
        assert await info.async_request(zc.zeroconf, 3000), "the announced service did not resolve"
        seen["port"], seen["service_port"] = info.port, service.wyoming_port
        seen["addresses"] = [socket.inet_ntoa(a) for a in info.addresses]
        async with AsyncTcpClient(seen["addresses"][0], info.port) as client:
            await client.write_event(Describe().event())
            described = Info.from_event(await client.read_event())
        seen["program"] = described.tts[0].name
    finally:
        await asyncio.to_thread(service.stop)  # (the loop goes on receiving meanwhile)
    # a goodbye sets the record's TTL to 1 s; the browser reports it gone at its next cache sweep (10 s)
    deadline = time.monotonic() + 20
    while not seen["removed"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await browser.async_cancel()
    await zc.async_close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))))
