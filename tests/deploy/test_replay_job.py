"""The replay Indexed Job and its merge Job (Helm values and the Kustomize component): rendered, schema-validated like
every other manifest, wired together, and their commands run for real as local processes (shards, then the merge)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from app.cli import build_parser
from app.policy_tools.replay.shards import parse_shard

from ._helpers import DEPLOY, POLICY_DIR, REPO, UID, find_tool, load_docs, render_helm, run

K8S_VERSION = "1.30.0"
INDEX_VAR = "$(JOB_COMPLETION_INDEX)"


def _kustomize_replay() -> tuple[dict, ...]:
    kustomize = find_tool("kustomize")
    if not kustomize:
        pytest.skip("kustomize not found; run deploy/install-tools.sh")
    return tuple(load_docs(run([kustomize, "build", str(DEPLOY / "kustomize" / "overlays" / "replay")]).stdout))


RENDERS = {"helm": lambda: render_helm("replay-job-values"), "kustomize": _kustomize_replay}


def _jobs(docs) -> tuple[dict, dict]:
    jobs = [o for o in docs if o["kind"] == "Job"]
    shards = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
    merges = [j for j in jobs if j["spec"].get("completionMode") != "Indexed"]
    assert len(shards) == 1 and len(merges) == 1, [j["metadata"]["name"] for j in jobs]
    return shards[0], merges[0]


def _container(job: dict) -> dict:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("source", RENDERS)
def test_replay_jobs_validate(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="run deploy/install-tools.sh")
    docs = RENDERS[source]()
    problems = []
    for obj in docs:
        if obj["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # CRDs: checked by test_manifests.py
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", RENDERS)
def test_shards_and_merge_are_wired_together(source):
    docs = RENDERS[source]()
    shard_job, merge_job = _jobs(docs)
    count = shard_job["spec"]["completions"]
    assert count >= 2 and shard_job["spec"]["parallelism"] <= count
    parser = build_parser()
    shard = _container(shard_job)
    env = {e["name"]: e for e in shard["env"]}
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    partials = []
    for index in range(count):
        args = parser.parse_args([a.replace(INDEX_VAR, str(index)) for a in shard["args"]])
        assert parse_shard(args.shard) == parse_shard(f"{index}/{count}")
        assert str(args.policy).startswith(POLICY_DIR + "/") and str(args.log).startswith("/data/")
        partials.append(args.partial)
    assert len(set(partials)) == count, "each shard writes its own partial"
    merge = parser.parse_args(_container(merge_job)["args"])
    assert merge.merge == partials and merge.wait_s > 0
    assert merge.report.parent == merge.json.parent == partials[0].parent
    assert merge_job["spec"]["activeDeadlineSeconds"] > merge.wait_s
    # Both Jobs mount the same claim at /data and the policies ConfigMap the chart or base renders.
    configmaps = {o["metadata"]["name"]: o for o in docs if o["kind"] == "ConfigMap"}
    for job in (shard_job, merge_job):
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in _container(job)["volumeMounts"]}
        claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
        assert claim == "heedful-replay-data"
        policies = configmaps[volumes[mounts[POLICY_DIR]]["configMap"]["name"]]
        assert Path(str(parser.parse_args([a.replace(INDEX_VAR, "0") for a in shard["args"]]).policy)).name in policies["data"]
        assert "emptyDir" in volumes[mounts["/tmp"]]
        sc = _container(job)["securityContext"]
        assert sc["runAsUser"] == UID and sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
        assert spec["securityContext"]["fsGroup"] == UID and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"


def test_replay_job_is_off_by_default_and_needs_a_claim():
    assert not [o for o in render_helm("default") if o["kind"] == "Job"]
    helm = find_tool("helm")
    if not helm:
        pytest.skip("helm not found")
    result = subprocess.run([helm, "template", "rel", str(DEPLOY / "helm" / "heedful"), "--set", "replayJob.enabled=true"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "replayJob.storage.existingClaim is required" in result.stderr


def test_the_rendered_commands_replay_a_log_and_merge_one_report(tmp_path: Path):
    """Run the Helm-rendered shard commands as separate processes (the Job's pods) and then the merge command, with the
    volume and ConfigMap paths mapped to local folders: the report equals a single process's over the same log."""
    shard_job, merge_job = _jobs(render_helm("replay-job-values"))
    count = shard_job["spec"]["completions"]
    data, policies = tmp_path / "data", tmp_path / "policies"
    shard_args = _container(shard_job)["args"]
    log = Path(shard_args[1].replace("/data", str(data)))
    log.parent.mkdir(parents=True)
    conversations = [("I want to kill myself tonight.", "Don't think like that."),
                     ("What's the capital of France?", "Paris."),
                     ("I'm scared about my biopsy results on Friday.", "Don't worry, I'm sure it's nothing!")]
    log.write_text("".join(json.dumps({"id": i, "messages": [{"role": "user", "content": u}], "reply": r}) + "\n"
                           for i, (u, r) in enumerate(conversations * 3)))
    policies.mkdir()
    for source in (REPO / "policies").glob("*.yaml"):
        (policies / source.name).write_text(source.read_text())

    def local(args: list[str], index: int | None = None) -> list[str]:
        return [a.replace(INDEX_VAR, str(index)).replace("/data", str(data)).replace(POLICY_DIR, str(policies)) for a in args]

    env = os.environ | {"PYTHONPATH": str(REPO)}
    heedful = [sys.executable, "-m", "app.cli"]
    # The merge starts first and waits, as the merge Job does beside the Indexed Job.
    merge = subprocess.Popen([*heedful, *local(_container(merge_job)["args"])], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        shards = [subprocess.Popen([*heedful, *local(shard_args, i)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
                  for i in range(count)]
        for shard in shards:
            _, shard_err = shard.communicate(timeout=600)
            assert shard.returncode == 0, shard_err
        out, err = merge.communicate(timeout=120)
    finally:
        merge.kill()
    assert merge.returncode == 0, err
    merged_args = build_parser().parse_args(local(_container(merge_job)["args"]))
    assert merged_args.report.read_text().startswith("<!doctype html>")
    merged = json.loads(merged_args.json.read_text())
    single_json = tmp_path / "single.json"
    single = subprocess.run([*heedful, "replay", str(log), "--policy", str(policies / "companion.yaml"), "--against",
                             str(policies / "default.yaml"), "--no-progress", "--workers", "1", "--json", str(single_json)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    expected = json.loads(single_json.read_text())
    assert merged["stats"] == expected["stats"] and merged["stats"]["replayed"] == 9
    assert out.startswith("9 lines, 9 replayed, 0 skipped")
