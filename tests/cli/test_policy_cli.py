"""The `heedful policy` and `heedful replay` commands: help, exit codes and output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("argv", [["policy"], ["policy", "check"], ["policy", "test"], ["policy", "schema"],
                                  ["policy", "explain"], ["policy", "diff"], ["replay"]])
def test_every_command_has_help(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and len(out) > 200 and "usage: heedful" in out


def test_check_passes_on_shipped_policies(capsys):
    code, out, err = run(capsys, "policy", "check", str(POLICIES))
    assert (code, out) == (0, "") and "ok" in err


def test_check_prints_file_line_code_field(capsys, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((POLICIES / "default.yaml").read_text().replace("action: regenerate\n      label: sycophancy_social",
                                                                   "action: regenerat\n      label: sycophancy_social"))
    code, out, _ = run(capsys, "policy", "check", str(bad))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), start=1) if "regenerat\n" in text + "\n")
    assert code == 1
    assert out.startswith(f"{bad}:{line}: policy_schema_error: spec.rules[3].action: ")


def test_schema_writes_the_committed_file(capsys):
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and out == (POLICIES / "policy.schema.json").read_text()
    assert json.loads(out)["title"] == "PolicyDocument"


def test_diff_exit_codes(capsys, tmp_path: Path):
    changed = tmp_path / "default.yaml"
    changed.write_text((POLICIES / "default.yaml").read_text().replace("mode: enforce", "mode: shadow"))
    assert run(capsys, "policy", "diff", str(POLICIES / "default.yaml"), str(POLICIES / "default.yaml"))[0] == 0
    code, out, _ = run(capsys, "policy", "diff", str(POLICIES / "default.yaml"), str(changed))
    assert (code, out) == (1, "mode changed: enforce -> shadow\n")


def test_explain_from_a_jsonl_line(capsys, tmp_path: Path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"id": 1, "messages": [{"role": "user", "content": "hi"}], "reply": "hello"}) + "\n"
                   + json.dumps({"id": 2, "messages": [{"role": "user", "content": "I want to kill myself tonight."}],
                                 "reply": "Don't think like that."}) + "\n")
    code, out, _ = run(capsys, "policy", "explain", "--policy", str(POLICIES / "default.yaml"), "--input", str(log), "--line", "2",
                       "--threads", "1")
    assert code == 0
    # Resources first, then the soothing body is repaired (labels.md 2.6).
    assert "crisis-resources -> prepend: APPLIES, continues" in out
    assert "decision: rule repair-pacification, action regenerate" in out
    assert "also applied: crisis-resources (prepend)" in out


def test_explain_needs_a_reply_with_messages(capsys):
    code, _, err = run(capsys, "policy", "explain", "--policy", str(POLICIES / "default.yaml"), "--messages", "hi")
    assert code == 2 and "--reply is required" in err


def test_test_exits_2_on_a_broken_suite(capsys, tmp_path: Path):
    (tmp_path / "default.yaml").write_text((POLICIES / "default.yaml").read_text())
    (tmp_path / "default_test.yaml").write_text("cases:\n  - name: x\n    user: hi\n    reply: yo\n    expect: {rule: nope}\n")
    code, _, err = run(capsys, "policy", "test", str(tmp_path))
    assert code == 2
    assert f"{tmp_path}/default_test.yaml:2: policy_test_error: cases[0].expect.rule: policy 'default' has no rule 'nope'" in err


def test_test_runs_a_suite_and_exits_1_on_failure(capsys, tmp_path: Path):
    (tmp_path / "default.yaml").write_text((POLICIES / "default.yaml").read_text())
    (tmp_path / "default_test.yaml").write_text(
        "cases:\n"
        "  - {name: crisis, user: 'I want to kill myself tonight.', reply: 'ok', expect: {also: [crisis-resources]}}\n"
        "  - {name: wrong, user: 'I want to kill myself tonight.', reply: 'ok', expect: {rule: none}}\n")
    code, out, _ = run(capsys, "policy", "test", str(tmp_path), "--threads", "1")
    assert code == 1
    assert re.search(r"1\s+default\s+-\s+crisis\s+pass", out), out
    assert "2 cases, 1 passed, 1 failed" in out


def test_parser_builds():
    assert build_parser().parse_args(["policy", "check"]).path == Path("policies")
