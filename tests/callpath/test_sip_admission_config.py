"""server.yaml's sip.limits, sip.tcp and rtp.comedia reach the running server: a real
caller over the limit is refused with 503 by a Center built from the config, and the
SIP layer's counters are on /metrics (callcenter/sip/limits.py does the limiting; its
own tests are in tests/sip/test_hardening.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from callcenter.sip.calls import CallFailed
from tests.support.rig import Rig


def _limited(server: dict[str, Any]) -> None:
    # Loopback is trusted by default; here it is not, so the test caller is a stranger.
    server["sip"]["limits"] = {"invite_rate": 0.001, "invite_burst": 2, "trusted": []}
    server["sip"]["tcp"] = {"max_per_ip": 3, "message_timeout_s": 7}
    server["rtp"]["comedia"] = True


def _metric(text: str, name: str) -> float:
    return float(next(ln for ln in text.splitlines() if ln.startswith(name + " ")).split()[1])


async def test_configured_limits_refuse_a_caller_and_are_counted(rig_factory: Any) -> None:
    rig: Rig = await rig_factory(server_edit=_limited)
    center = rig.center
    assert center.transport.max_tcp_per_ip == 3 and center.transport.tcp_message_timeout == 7
    assert center.media.comedia is True
    caller = await rig.caller()
    first = await caller.call("600", rig.sip)  # the echo test answers at once
    second = await caller.call("600", rig.sip)
    with pytest.raises(CallFailed) as refused:
        await caller.call("600", rig.sip)  # the burst of 2 is spent and hardly refills
    assert refused.value.status == 503
    for call in (first, second):
        await call.hangup("test_done")
    async with httpx.AsyncClient(base_url=rig.http) as http:
        metrics = (await http.get("/metrics")).text
    assert _metric(metrics, "callcenter_sip_ua_calls_in_total") == 2.0
    assert _metric(metrics, "callcenter_sip_ua_rejected_source_rate_total") == 1.0
    assert _metric(metrics, "callcenter_sip_transport_malformed_total") == 0.0


def test_a_bad_trusted_network_names_the_key(tmp_path: Any) -> None:
    from callcenter.config import load_config
    from callcenter.configerrors import ConfigError
    from tests.support.peers import make_config_dir

    def bad(server: dict[str, Any]) -> None:
        server["sip"]["limits"] = {"trusted": ["10.0.0.0/33"]}

    with pytest.raises(ConfigError) as err:
        load_config(make_config_dir(tmp_path, server_edit=bad))
    assert "sip.limits.trusted" in str(err.value) and "10.0.0.0/33" in str(err.value)
