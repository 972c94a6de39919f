"""The console's tables (SQLAlchemy 2). Changes go with an Alembic migration in app/console/migrations/versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    """One audit record's filterable facts: a narrow row, so lists, counts and charts over many decisions read little.
    The record itself and its texts are in `detail` (DetailRow)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # request id and time: one row per audit record
    request_id: Mapped[str] = mapped_column(String(120), index=True)
    ts: Mapped[float] = mapped_column(Float, index=True)
    policy: Mapped[str] = mapped_column(String(120))
    policy_version: Mapped[str] = mapped_column(String(60))
    policy_revision: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(60))
    flags: Mapped[str] = mapped_column(String(400))  # ",pacification,distress," so one LIKE finds a label
    flagged: Mapped[bool] = mapped_column(Boolean)
    acted_on: Mapped[str] = mapped_column(String(60))  # the label the deciding rule repairs for ("" if none)
    would_change: Mapped[bool] = mapped_column(Boolean)  # shadow mode: a repair was computed and not returned
    sample_rate: Mapped[float] = mapped_column(Float)
    retain_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    has_texts: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[DetailRow] = relationship(lazy="joined", innerjoin=True)

    # One index with every filtered column after the time: lists and counts read the index alone, in time order.
    __table_args__ = (Index("ix_decisions_ts_facts", "ts", "flagged", "action", "rule", "policy", "outcome", "tenant",
                            "would_change", "reviewed", "flags", "mode"),)


class HourRow(Base):
    """Decisions counted per hour and per (policy, rule, action, outcome, tenant, would-change), kept up to date as
    they are stored: the charts read these few rows instead of every decision."""

    __tablename__ = "decision_hours"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds // 3600
    policy: Mapped[str] = mapped_column(String(120), primary_key=True)
    rule: Mapped[str] = mapped_column(String(120), primary_key=True)
    action: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(60), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    would_change: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    decisions: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[int] = mapped_column(Integer)
    acted: Mapped[int] = mapped_column(Integer)


class DetailRow(Base):
    """The whole audit record (never its texts) as JSON, and the texts apart, only where the policy kept them."""

    __tablename__ = "decision_details"

    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    messages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    returned: Mapped[str | None] = mapped_column(Text, nullable=True)
    would_return: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewRow(Base):
    """One reviewer's verdict on one decision; a later review of the same decision supersedes it (`current`)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    ts: Mapped[float] = mapped_column(Float, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    current: Mapped[bool] = mapped_column(Boolean, default=True)


class MarkRow(Base):
    """A review's mark on one label: correct, false_flag or missed."""

    __tablename__ = "review_marks"

    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(60), primary_key=True)
    mark: Mapped[str] = mapped_column(String(20))
    flagged: Mapped[bool] = mapped_column(Boolean)  # whether the label was flagged on the decision when marked


class CursorRow(Base):
    """Where ingestion stopped in a stream (the Redis entry id), so a restart reads on from there."""

    __tablename__ = "ingest_cursors"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    position: Mapped[str] = mapped_column(String(60))
