"""`heedful demo --scripted`: the real proxy and classifier against the scripted upstream, every scenario shown."""

from __future__ import annotations

import pytest

from app.cli import main
from app.scripted_upstream import SCENARIOS


def test_the_scripted_demo_shows_each_scenario_and_the_repair(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--scripted"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "SCRIPTED local upstream" in out
    for scenario in SCENARIOS:
        assert f"=== {scenario.name} " in out
    pacification = out.split("=== pacification ", 1)[1].split("=== ", 1)[0]
    assert "rule repair-pacification -> action regenerate (repaired" in pacification
    assert next(s for s in SCENARIOS if s.name == "pacification").repaired.split(",")[0] in pacification.replace("\n    ", " ")
