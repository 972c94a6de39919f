"""All settings, from `heedful serve` options or HEEDFUL_* environment variables. No other module reads the environment."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.repair_prompt import DEFAULT_PLACEMENT, DEFAULT_REWRITE_DRAFT, Placement, RewriteDraft
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
    upstream_api_key_file: Path | None = Field(None, description="A file holding the upstream key (a mounted Secret), so "
                                               "the key never shows in process arguments.")
    upstream_api_key_header: str = Field("authorization", description="How the deployment key goes upstream: "
                                         "`authorization` (Bearer) or a header name such as `x-api-key`.")
    host: str = "127.0.0.1"
    port: int = 8080
    policies: Path = Field(default_factory=lambda: default_policy_dir(),
                           description="Directory of policy YAML files; watched and hot-reloaded. Default: ./policies "
                           "where it exists, else the policies shipped inside the package.")
    redis_url: str | None = Field(None, description="Redis for shared state; without it an in-process store is used.")
    model_path: Path = Field(DEFAULT_MODEL_DIR, description="Classifier model folder.")
    upstream_timeout_s: float = Field(120.0, gt=0, description="Total deadline of one upstream call, from sending the "
                                      "request to the last byte of the reply (each repair call has its own); not a "
                                      "per-read timeout.")
    upstream_max_response_bytes: int = Field(8 * 1024 * 1024, gt=0, description="Cap on one upstream reply's bytes; "
                                             "past it the reply is cut as it arrives and the client gets a 502.")
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
                                  "is read while it is written (the guard's work after the last token stays one window), "
                                  "while a scoring thread is free; with all of them busy the draft is read as one body. "
                                  "Turn off for upstreams that cannot stream.")
    repair_placement: Placement = Field(DEFAULT_PLACEMENT, description="Where a repair call puts the corrective "
                                        "instruction (app/repair_prompt.py; compared by bench/repair_bench.py).")
    rewrite_draft: RewriteDraft = Field(DEFAULT_REWRITE_DRAFT, description="How a rewrite shows the draft: quoted in the instruction "
                                        "or as the assistant's previous turn (app/repair_prompt.py).")
    tenant_header: str = "x-heedful-tenant"
    trust_tenant_header: bool | None = Field(
        None, description="Honour the tenant header from clients. Default: yes where no API keys are mapped (a sidecar "
        "whose only client is the app), no where HEEDFUL_TENANT_KEYS maps keys (a shared gateway). A mapped key always "
        "wins over the header.")
    tenant_keys: dict[str, str] = Field(default_factory=dict, description="API key -> tenant name, as JSON.")
    # User memory (docs/user-memory.md): stated preferences and the distress trend per user, no text.
    user_memory: bool = Field(True, description="Remember per user how they want to be met (user.* in policies).")
    user_header: str = Field("x-heedful-user", description="Header naming the app's user id; else the body's `user`.")
    memory_opt_out_header: str = Field("x-heedful-memory", description="A request with this header set to 'off' is "
                                       "neither read from nor written to user memory.")
    user_memory_secret: SecretStr | None = Field(
        None, description="HMAC key for user ids (the same on every replica). Unset: a random key per process, so "
        "memory lasts only as long as the process. A new key forgets every user.")
    user_memory_retention_s: int = Field(90 * 24 * 3600, gt=0, description="A user not seen for this long is forgotten; "
                                         "no signal is kept longer.")
    user_memory_max_users: int = Field(100_000, gt=0, description="In-process store: the most users kept (least "
                                       "recently seen go first).")
    # Durability of audit records and budgets while Redis is away (docs/deployment.md#when-redis-fails).
    audit_spool_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "heedful-audit-spool",
        description="Where audit records wait while Redis is unavailable (used only with a Redis URL). Default: "
        "$TMPDIR/heedful-audit-spool, inside the container's writable /tmp (an emptyDir in Kubernetes).")
    audit_spool_max_bytes: int = Field(48 * 1024 * 1024, gt=0, description="Spool bound in record bytes; records past "
                                       "it are dropped and counted in heedful_audit_dropped_total{reason=\"spool_full\"}.")
    audit_spool_max_records: int = Field(200_000, gt=0, description="Spool bound in records (whichever bound comes first).")
    audit_spool_fsync: bool = Field(False, description="fsync every spooled record (survives power loss, not only a "
                                    "process crash); worth it only on a volume that outlives the node.")
    audit_required: bool = Field(False, description="Audit is required, not best-effort: /readyz fails while audit records "
                                 "would be lost (the spool is full or cannot be written). Default: best-effort.")
    budget_replicas: int = Field(1, ge=1, description="Replicas sharing Redis: while Redis is unavailable each spends at "
                                 "most 1/budget_replicas of a tenant's repair budget on its own.")
    # The review console (app/console, docs/review-console.md): `heedful console`, or mounted at /console by `console`.
    console: bool = Field(False, description="Mount the review console at /console in the proxy.")
    console_db_url: str = Field("sqlite:///heedful-console.db", description="The console's database (SQLAlchemy URL): "
                                "SQLite by default, postgresql+psycopg://... for a shared one.")
    console_tokens_file: Path | None = Field(None, description="JSON file of console API tokens (hashed) with roles; "
                                             "`heedful console token add` writes it.")
    console_tokens: list[dict[str, str]] = Field(default_factory=list, description="Console tokens as JSON, same entries "
                                                 "as the file: [{\"name\", \"role\", \"sha256\"}].")
    console_session_secret: SecretStr | None = Field(None, description="Signs console session cookies; unset: a random "
                                                     "one per start (sessions end with the process).")
    console_secure_cookies: bool = Field(True, description="Session cookies only over HTTPS (browsers treat localhost "
                                         "as secure); turn off only behind plain-HTTP test rigs.")
    console_retention_days: float = Field(90.0, gt=0, description="Decisions older than this leave the console's "
                                          "database (a policy's audit.retention_days may say sooner).")
    console_ingest_batch: int = Field(500, ge=1, description="Audit records read per poll of the stream.")

    @model_validator(mode="after")
    def _key_from_file(self) -> Settings:
        if self.upstream_api_key_file is not None:
            if self.upstream_api_key is not None:
                raise ValueError("set the upstream key once: upstream_api_key or upstream_api_key_file, not both")
            try:
                key = self.upstream_api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"upstream_api_key_file {self.upstream_api_key_file}: {exc.strerror}") from exc
            if not key:
                raise ValueError(f"upstream_api_key_file {self.upstream_api_key_file} is empty")
            self.upstream_api_key = SecretStr(key)
        return self


def load_settings(**overrides: object) -> Settings:
    return Settings.model_validate({k: v for k, v in overrides.items() if v is not None})
