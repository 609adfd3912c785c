"""WYOMING_ZEROCONF for real: the service announces its Wyoming server over mDNS, and a zeroconf browser
(as Home Assistant's) finds it, connects at the announced address and port, and sees it withdrawn when the
service stops. All in a network namespace of the test's own, whose only interface is loopback (with
multicast switched on): no packet leaves it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT, require_binary

pytestmark = pytest.mark.integration


def test_home_assistant_finds_the_wyoming_server_over_zeroconf(tmp_path):
    unshare, ip = require_binary("unshare"), require_binary("ip")
    setup = f"{ip} link set lo up && {ip} link set lo multicast on && {ip} route add 224.0.0.0/4 dev lo"
    run = subprocess.run([unshare, "--net", "sh", "-c", f"{setup} && exec {sys.executable} -m tests.zeroconf_check "
                          f"{tmp_path / 'data'} 'Kitchen speaker'"], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["added"] == ["Kitchen speaker._wyoming._tcp.local."], seen
    assert seen["port"] == seen["service_port"] and seen["addresses"] == ["127.0.0.1"], seen
    assert seen["program"] == "ef-speech", seen
    assert seen["removed"] == ["Kitchen speaker._wyoming._tcp.local."], seen  # withdrawn when it stopped
