"""All settings, from `heedful serve` options or HEEDFUL_* environment variables. No other module reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.repair_prompt import Placement, RewriteDraft
from classifiers.artifacts import DEFAULT_MODEL_DIR


# The shipped policies travel inside the package (app/default_policies links to the repository's policies/), so an
# installed `heedful serve` started anywhere has a policy to run.
PACKAGED_POLICIES = Path(__file__).resolve().parent / "default_policies"


def default_policy_dir() -> Path:
    local = Path("policies")
    return local if local.is_dir() else PACKAGED_POLICIES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEEDFUL_", env_ignore_empty=True, extra="ignore")

    upstream: str = Field("https://api.openai.com/v1", description="Base URL of the OpenAI-compatible upstream.")
    upstream_api_key: SecretStr | None = Field(None, description="If set, replaces the client's Authorization upstream.")
    host: str = "127.0.0.1"
    port: int = 8080
    policies: Path = Field(default_factory=lambda: default_policy_dir(),
                           description="Directory of policy YAML files; watched and hot-reloaded. Default: ./policies "
                           "where it exists, else the policies shipped inside the package.")
    redis_url: str | None = Field(None, description="Redis for shared state; without it an in-process store is used.")
    model_path: Path = Field(DEFAULT_MODEL_DIR, description="Classifier model folder.")
    upstream_timeout_s: float = Field(120.0, gt=0)
    upstream_connect_timeout_s: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(2_000_000, gt=0)
    log_level: str = "info"
    audit_maxlen: int = Field(100_000, gt=0, description="Audit stream length bound (Redis XADD MAXLEN ~).")
    audit_retention_s: int = Field(7 * 24 * 3600, gt=0)
    score_cache_ttl_s: int = Field(3600, ge=0)
    scoring_threads: int = Field(2, ge=1, le=16)
    redis_timeout_s: float = Field(0.05, gt=0, description="Per-operation Redis timeout; past it the request goes on without Redis.")
    policy_poll_s: float = Field(1.0, gt=0)
    guard_enabled: bool = Field(True, description="False turns the proxy into a plain pass-through (kill switch).")
    shutdown_drain_s: float = Field(5.0, ge=0, description="At shutdown, how long background audit writes may take.")
    stream_upstream: bool = Field(True, description="Answer plain-text JSON requests from an upstream stream, so the draft "
                                  "is read while it is written (the guard's work after the last token stays one window). "
                                  "Turn off for upstreams that cannot stream.")
    repair_placement: Placement = Field("trailing_system", description="Where a repair call puts the corrective "
                                        "instruction (app/repair_prompt.py; compared by bench/repair_bench.py).")
    rewrite_draft: RewriteDraft = Field("quoted", description="How a rewrite shows the draft: quoted in the instruction "
                                        "or as the assistant's previous turn (app/repair_prompt.py).")
    tenant_header: str = "x-heedful-tenant"
    trust_tenant_header: bool | None = Field(
        None, description="Honour the tenant header from clients. Default: yes where no API keys are mapped (a sidecar "
        "whose only client is the app), no where HEEDFUL_TENANT_KEYS maps keys (a shared gateway). A mapped key always "
        "wins over the header.")
    tenant_keys: dict[str, str] = Field(default_factory=dict, description="API key -> tenant name, as JSON.")


def load_settings(**overrides: object) -> Settings:
    return Settings.model_validate({k: v for k, v in overrides.items() if v is not None})
