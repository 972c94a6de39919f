"""A client that leaves takes its upstream work with it: the proxy closes the upstream connection at once (not at its
deadline, a minute away here), gives the in-flight slot back, and still leaves an audit record."""

from __future__ import annotations

import time

import httpx
import pytest

from app.fault_upstream import FaultUpstream
from app.local_server import LocalServer
from tests.conftest import wait_for
from tests.faults.conftest import last_connection
from tests.faults.test_upstream_faults import USER, audit_of, in_flight


def _metric(server: LocalServer, name: str) -> float:
    line = next(line for line in httpx.get(f"{server.url}/metrics").text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fault", ["hang_headers", "drip_body"])
def test_a_client_leaving_before_its_reply_cancels_the_upstream_call(patient_proxy: LocalServer, faulty: FaultUpstream,
                                                                     fault: str, stream: bool) -> None:
    before = len(faulty.for_fault(fault))
    gone_before = _metric(patient_proxy, 'heedful_client_disconnects_total{stage="before_reply"}')
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{patient_proxy.url}/v1/chat/completions", timeout=httpx.Timeout(30, read=0.5),
                   json={"model": f"fault:{fault}", "messages": USER, "stream": stream})
    left = time.monotonic()
    connection = last_connection(faulty, fault, before)
    assert wait_for(lambda: connection.peer_closed is not None, 3), "the upstream call went on after the client left"
    assert connection.peer_closed is not None and connection.peer_closed - left < 3
    assert wait_for(lambda: in_flight(patient_proxy) == 0, 3)
    assert _metric(patient_proxy, 'heedful_client_disconnects_total{stage="before_reply"}') == gone_before + 1


def test_a_client_leaving_mid_stream_cancels_the_upstream_stream(patient_proxy: LocalServer, faulty: FaultUpstream) -> None:
    """The reply's text went out (holdback met, decision made), the upstream then stalls: the client hangs up."""
    before = len(faulty.for_fault("hang_late"))
    with httpx.stream("POST", f"{patient_proxy.url}/v1/chat/completions", timeout=30,
                      json={"model": "fault:hang_late", "messages": USER, "stream": True}) as response:
        request_id = response.headers["x-heedful-request-id"]
        for line in response.iter_lines():
            if "mind?" in line:  # the last words of the reply: the client has it all and goes
                break
    left = time.monotonic()
    connection = last_connection(faulty, "hang_late", before)
    assert wait_for(lambda: connection.peer_closed is not None, 3), "the upstream stream went on after the client left"
    assert connection.peer_closed is not None and connection.peer_closed - left < 3
    assert wait_for(lambda: in_flight(patient_proxy) == 0, 3)
    assert wait_for(lambda: bool(audit_of(patient_proxy, request_id)), 3)
    assert audit_of(patient_proxy, request_id)[0]["cut"] == "client_disconnected"
