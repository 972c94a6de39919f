"""Decisions (narrow facts) and their details (record, texts), reviews, review marks and ingest cursors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("request_id", sa.String(120), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("policy", sa.String(120), nullable=False),
        sa.Column("policy_version", sa.String(60), nullable=False),
        sa.Column("policy_revision", sa.String(120), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(60), nullable=False),
        sa.Column("flags", sa.String(400), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("acted_on", sa.String(60), nullable=False),
        sa.Column("would_change", sa.Boolean(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("retain_until", sa.Float(), nullable=True),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("has_texts", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_decisions_request_id", "decisions", ["request_id"])
    op.create_index("ix_decisions_ts", "decisions", ["ts"])
    op.create_index("ix_decisions_ts_facts", "decisions", ["ts", "flagged", "action", "rule", "policy", "outcome", "tenant",
                                                           "would_change", "reviewed", "flags", "mode"])
    op.create_table(
        "decision_hours",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("policy", sa.String(120), primary_key=True),
        sa.Column("rule", sa.String(120), primary_key=True),
        sa.Column("action", sa.String(40), primary_key=True),
        sa.Column("outcome", sa.String(60), primary_key=True),
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("would_change", sa.Boolean(), primary_key=True),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("acted", sa.Integer(), nullable=False),
    )
    op.create_table(
        "decision_details",
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("returned", sa.Text(), nullable=True),
        sa.Column("would_return", sa.Text(), nullable=True),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_reviews_decision_id", "reviews", ["decision_id"])
    op.create_index("ix_reviews_ts", "reviews", ["ts"])
    op.create_table(
        "review_marks",
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("label", sa.String(60), primary_key=True),
        sa.Column("mark", sa.String(20), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "ingest_cursors",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("position", sa.String(60), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_cursors")
    op.drop_table("review_marks")
    op.drop_table("reviews")
    op.drop_table("decision_details")
    op.drop_table("decision_hours")
    op.drop_table("decisions")
