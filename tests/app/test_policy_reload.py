"""Hot reload: a changed policy swaps in atomically; a broken edit is refused and the last good one stays."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from tests.conftest import POLICIES, wait_for


def version(proxy) -> str:  # type: ignore[no-untyped-def]
    return httpx.get(f"{proxy.url}/readyz").json()["policies"]["default"]


def test_changed_policy_is_swapped_in_and_broken_edit_refused(make_proxy, policy_dir: Path) -> None:
    proxy = make_proxy()
    path = policy_dir / "default.yaml"
    path.write_text(path.read_text().replace('version: "2"', 'version: "3"'))
    assert wait_for(lambda: version(proxy) == "3")
    path.write_text(path.read_text().replace("action: regenerate", "action: regenrate", 1))
    assert wait_for(lambda: 'heedful_policy_reloads_total{outcome="failure"} 1.0' in httpx.get(f"{proxy.url}/metrics").text)
    ready = httpx.get(f"{proxy.url}/readyz").json()
    assert ready["policies"]["default"] == "3"
    assert "default.yaml:" in ready["last_policy_error"] and "spec.rules[1].action" in ready["last_policy_error"]


def test_configmap_style_symlink_swap_is_seen(make_proxy, tmp_path: Path) -> None:
    # Kubernetes mounts ConfigMaps as name -> ..data/name, with ..data -> ..<timestamp>; an update swaps ..data.
    mount = tmp_path / "mount"
    first, second = mount / "..2026_01", mount / "..2026_02"
    first.mkdir(parents=True)
    shutil.copy(POLICIES / "default.yaml", first / "default.yaml")
    os.symlink("..2026_01", mount / "..data")
    os.symlink("..data/default.yaml", mount / "default.yaml")
    proxy = make_proxy(policies=mount)
    assert version(proxy) == "2"
    second.mkdir()
    (second / "default.yaml").write_text((POLICIES / "default.yaml").read_text().replace('version: "2"', 'version: "7"'))
    os.symlink("..2026_02", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert wait_for(lambda: version(proxy) == "7")


def test_an_edit_under_the_same_version_changes_the_revision_header(make_proxy, policy_dir: Path) -> None:
    proxy = make_proxy()

    def revision() -> str:
        return httpx.get(f"{proxy.url}/readyz").json()["policy_revisions"]["default"]

    before = revision()
    path = policy_dir / "default.yaml"
    path.write_text(path.read_text().replace("max_attempts: 2", "max_attempts: 3", 1))
    assert wait_for(lambda: revision() != before)
    assert httpx.get(f"{proxy.url}/readyz").json()["policies"]["default"] == "2"  # the declared version did not change


def test_reload_refuses_what_check_refuses(make_proxy, policy_dir: Path) -> None:
    """A threshold outside [0, 1] and an unknown flag name load cleanly in the CEL sense; they must not go live."""
    proxy = make_proxy()
    path = policy_dir / "default.yaml"
    good = path.read_text()
    for broken, message in ((good.replace("reply.pacification >= 0.3", "reply.pacification >= 50"), "outside [0, 1]"),
                            (good.replace("'crisis' in flags", "'crises' in flags"), "'crises' is not a flag name")):
        before = httpx.get(f"{proxy.url}/readyz").json()["policy_revisions"]["default"]
        path.write_text(broken)
        assert wait_for(lambda: message in (httpx.get(f"{proxy.url}/readyz").json()["last_policy_error"] or "")), message
        assert httpx.get(f"{proxy.url}/readyz").json()["policy_revisions"]["default"] == before
        path.write_text(good)
        assert wait_for(lambda: httpx.get(f"{proxy.url}/readyz").json()["last_policy_error"] is None)


def test_the_server_starts_on_the_checked_read_and_a_later_edit_goes_live(upstream, policy_dir: Path,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    # `heedful serve` reads and checks the policies once before binding the port and starts on that very read; an edit
    # made between that read and the start is picked up by the first poll, not lost.
    from app.cli.serve import checked_startup
    from app.config import Settings
    from app.local_server import LocalServer
    from app.main import create_app

    settings = Settings(upstream=f"{upstream[1].url}/v1", policies=policy_dir, policy_poll_s=0.2,
                        audit_spool_dir=tmp_path / "spool")
    checked = checked_startup(settings)
    path = policy_dir / "default.yaml"
    path.write_text(path.read_text().replace('version: "2"', 'version: "5"'))
    with LocalServer(create_app(settings, checked)) as proxy:
        assert wait_for(lambda: version(proxy) == "5")
