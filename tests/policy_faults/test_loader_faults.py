"""Every broken policy file is a PolicyError naming the file (and line where one is known), from the loader, from
`heedful policy check` and from `heedful serve`: never a RecursionError, a hang, or a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.policy.errors import PolicyError
from app.policy.policy_set import load_policy_set
from tests.conftest import POLICIES
from tests.policy_faults.faults import FAULTS, Fault


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    shutil.copy(POLICIES / "default.yaml", target / "default.yaml")
    shutil.copy(POLICIES / "support.yaml", target / "support.yaml")
    return target


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_loading_a_broken_file_is_a_policy_error_naming_it(policies: Path, fault: Fault) -> None:
    broken = policies / "support.yaml"
    fault.apply(broken)
    with pytest.raises(PolicyError) as info:
        load_policy_set(policies)
    problem = next(p for p in info.value.problems if p.file == str(broken))
    assert fault.message in problem.message, problem
    if fault.line is not None:
        assert problem.line == fault.line, problem


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_policy_check_reports_a_broken_file_without_a_traceback(tmp_path: Path, fault: Fault, capsys) -> None:
    broken = tmp_path / "support.yaml"
    fault.apply(broken)
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "check", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 1
    assert f"{broken}:{fault.line or ''}" in out and fault.message in out


def test_a_deep_policy_test_suite_is_reported_too(policies: Path, capsys) -> None:
    suite = policies / "support_test.yaml"
    suite.write_bytes(b"cases: " + b"[" * 2000 + b"]" * 2000 + b"\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "check", str(policies)])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 1 and f"{suite}:1: policy_yaml_error: nested more than" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_permission_denied_is_a_policy_error(policies: Path) -> None:
    broken = policies / "support.yaml"
    broken.chmod(0)
    with pytest.raises(PolicyError, match="support.yaml:1: policy_yaml_error: cannot read: Permission denied"):
        load_policy_set(policies)


def test_serve_refuses_a_deep_policy_with_the_error_and_no_traceback(policies: Path) -> None:
    FAULTS[0].apply(policies / "support.yaml")
    result = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--policies", str(policies), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{policies / 'support.yaml'}:3: policy_yaml_error: nested more than 64 levels deep" in result.stderr
    assert "Traceback" not in result.stderr
