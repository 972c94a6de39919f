"""Prometheus metrics, on a registry owned by the app (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SCORE_BUCKETS = tuple(round(i / 10, 1) for i in range(1, 11))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("heedful_requests", "Guarded requests by policy, rule and action.",
                                ["policy", "rule", "action", "stream"], registry=r)
        self.skipped = Counter("heedful_skipped", "Requests passed through unjudged, by reason (guard_disabled, "
                               "not_user_turn, tool_call).", ["reason"], registry=r)
        self.score = Histogram("heedful_score", "Draft scores by label.", ["label"], buckets=_SCORE_BUCKETS, registry=r)
        self.scoring_seconds = Histogram("heedful_scoring_seconds", "Classifier time by stage.", ["stage"],
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_seconds = Histogram("heedful_upstream_seconds", "Upstream call time.", buckets=_LATENCY_BUCKETS, registry=r)
        self.added_latency = Histogram("heedful_added_latency_seconds", "Time the guard added on top of the upstream.",
                                       ["policy", "stream"], buckets=_LATENCY_BUCKETS, registry=r)
        self.regenerations = Counter("heedful_regenerations", "Repair calls to the upstream.", ["policy", "rule"], registry=r)
        self.repair_rejections = Counter("heedful_repair_rejections", "Repair candidates rejected before choosing, by "
                                         "reason (meta_text, quotes_instruction, worse_than_draft).",
                                         ["policy", "rule", "reason"], registry=r)
        self.failures = Counter("heedful_guard_failures", "Guard failures by kind.", ["kind"], registry=r)
        self.policy_reloads = Counter("heedful_policy_reloads", "Policy reloads by outcome.", ["outcome"], registry=r)
        self.client_disconnects = Counter("heedful_client_disconnects", "Clients that left before their reply was "
                                          "complete (their upstream work is cancelled), by stage.", ["stage"], registry=r)
        self.in_flight = Gauge("heedful_in_flight_requests", "Requests being handled.", registry=r)
        self.redis_up = Gauge("heedful_redis_up", "1 when the last Redis operation succeeded.", registry=r)
        self.latency_budget = Gauge("heedful_policy_latency_budget_seconds", "Each policy's added-latency budget.",
                                    ["policy"], registry=r)
        # The durable audit path and budgets while Redis is away (app/store.py, docs/deployment.md#when-redis-fails).
        self.audit_spooled = Counter("heedful_audit_spooled", "Audit records written to the on-disk spool because Redis "
                                     "was unavailable or slower than its timeout.", registry=r)
        self.audit_resent = Counter("heedful_audit_resent", "Spooled audit records re-sent to Redis.", registry=r)
        self.audit_dropped = Counter("heedful_audit_dropped", "Audit records lost, by reason (spool_full: past the spool's "
                                     "bound; spool_error: the spool could not be written; spool_unavailable: no spool).",
                                     ["reason"], registry=r)
        self.audit_spool_records = Gauge("heedful_audit_spool_records", "Audit records waiting in the spool.", registry=r)
        self.audit_spool_bytes = Gauge("heedful_audit_spool_bytes", "Bytes of audit records waiting in the spool.",
                                       registry=r)
        self.budget_fallback = Counter("heedful_budget_fallback_decisions", "Repair-budget decisions this replica made "
                                       "on its own share while Redis was unavailable, by outcome.", ["outcome"], registry=r)
        for reason in ("spool_full", "spool_error", "spool_unavailable"):
            self.audit_dropped.labels(reason)
        for outcome in ("allowed", "denied"):
            self.budget_fallback.labels(outcome)
        for kind in ("scoring_error", "scoring_timeout", "upstream_error", "upstream_timeout", "redis", "user_memory"):
            self.failures.labels(kind)
        for stage in ("before_reply", "mid_stream"):
            self.client_disconnects.labels(stage)
        for outcome in ("success", "failure"):
            self.policy_reloads.labels(outcome)

    def count_upstream_failure(self, status: int) -> None:
        """An upstream failure of the guard's own making to count: 5xx, timeouts and broken streams (4xx pass through)."""
        if status >= 500:
            self.failures.labels("upstream_timeout" if status == 504 else "upstream_error").inc()
