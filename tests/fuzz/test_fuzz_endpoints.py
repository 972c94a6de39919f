"""Property-based fuzzing of POST /v1/chat/completions and POST /v1/guard/score over a real socket: whatever a client
sends, the answer is never a 5xx, a reset or a hang; every error is an OpenAI error object with a request id; every stream
ends in [DONE] or an error event. Bounded for CI (profile fuzz-ci); `bench/fuzz.py` is the long run (>= 10,000)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.hostile import FuzzRequest, Tally, requests, send

CI = settings.get_profile("fuzz-ci")
BATCH = 4  # sent at once, so requests also overlap as they would from many clients


@settings(CI)
@given(batch=st.lists(requests(), min_size=BATCH, max_size=BATCH))
def test_no_input_gets_a_5xx_a_reset_or_a_malformed_error(fuzz_proxy, batch: list[FuzzRequest]) -> None:
    tally = Tally()
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(BATCH) as pool:
        for request, verdict in zip(batch, pool.map(lambda r: send(client, fuzz_proxy.url, r), batch)):
            tally.add(request, verdict)
    assert not tally.anomalies, {name: (req.path, req.kind, req.content_type, req.body[:300], v.status, v.detail)
                                 for name, (req, v) in tally.examples.items()}
