"""Audit sampling per rule and outcome, and the retention bound a policy sets, seen from what reaches the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.audit import sampled
from app.policy.errors import PolicyError
from app.policy.loader import load_policy_file
from tests.conftest import ProxyFactory
from tests.console.helpers import CONVERSATIONS, ConsoleClient, console_proxy, send_conversations, set_audit


def test_sampling_is_a_stable_share_of_request_ids() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    kept = sum(sampled(i, 0.01) for i in ids)
    assert 140 <= kept <= 260  # 1 % of 20,000, give or take sampling noise
    assert [sampled(i, 0.3) for i in ids[:200]] == [sampled(i, 0.3) for i in ids[:200]]  # every replica agrees
    assert all(sampled(i, 1.0) for i in ids[:100]) and not any(sampled(i, 0.0) for i in ids[:100])


def test_every_repair_and_no_pass_is_kept_when_the_policy_says_so(
        make_proxy: ProxyFactory, policy_dir: Path, tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    set_audit(policy_dir, "    include_texts: false\n    sample:\n      default: 1.0\n      outcomes:\n        passed: 0.0\n"
                          "    retention_days: 30\n")
    file, clear = tokens
    server = console_proxy(make_proxy, f"sqlite:///{tmp_path / 'c.db'}", file)
    send_conversations(server)  # two repairs, passes among the rest
    console = ConsoleClient(server)
    listed = console.wait_for(2, clear["viewer"])
    outcomes = [d["outcome"] for d in listed["decisions"]]
    assert outcomes.count("repaired") == 2 and "passed" not in outcomes
    detail = console.http.get(f"/api/decisions/{listed['decisions'][0]['id']}",
                              headers={"authorization": f"Bearer {clear['viewer']}"}).json()
    record = detail["record"]
    assert record["sample_rate"] == 1.0
    assert record["retain_until"] == pytest.approx(record["ts"] + 30 * 86400)
    console.close()
    assert len(CONVERSATIONS) > 2


def test_a_share_outside_0_to_1_is_refused_with_its_place(tmp_path: Path) -> None:
    policy = (Path(__file__).resolve().parents[2] / "policies" / "default.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(policy.replace("    include_texts: false", "    include_texts: false\n    sample:\n      rules:\n"
                                  "        pacification: 1.5", 1), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_file(bad)
    assert "between 0 and 1" in str(caught.value) and "bad.yaml" in str(caught.value)


def test_a_misspelt_rule_in_the_sample_is_refused(tmp_path: Path) -> None:
    policy = (Path(__file__).resolve().parents[2] / "policies" / "default.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "typo.yaml"
    bad.write_text(policy.replace("    include_texts: false", "    include_texts: false\n    sample:\n      rules:\n"
                                  "        repair-pacificaton: 1.0", 1), encoding="utf-8")
    with pytest.raises(PolicyError, match="'repair-pacificaton', but this policy has no such rule"):
        load_policy_file(bad)
