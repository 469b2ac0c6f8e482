"""The tables. No business rules here: the engine and the register decide, these only keep.

Every table is created by Alembic migrations (storage/migrations); this module is the source
the migrations were written from, and tests check the two agree.
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases.

    SQLite has no time zone type and would hand back naive values, which then fail to compare
    with the aware ones the clock gives; so values are stored as UTC and re-tagged on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT primary keys on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime()}


class ProcessVersion(Base):
    """One immutable deployed version of one BPMN process id."""

    __tablename__ = "process_version"
    __table_args__ = (
        UniqueConstraint("process_id", "version", name="uq_process_version_number"),
        Index("ix_process_version_content", "process_id", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(400))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(400))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # process id -> ProcessVersion.id of each called process, resolved at deploy time
    dependencies: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # files the diagram names (forms, UI hints): filename -> text
    assets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # facts read from the XML at deploy time: lanes -> roles, names, documentation
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deployed_by: Mapped[str] = mapped_column(String(200))
    deployed_at: Mapped[datetime]
    comment: Mapped[str | None] = mapped_column(Text)


class Counter(Base):
    """Gapless sequences (case numbers per year; later certificate numbers per office and year)."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Case(Base):
    """One running or finished process instance: an application for a registration."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_started", "status", "started_at"),
        Index("ix_cases_version_status", "process_version_id", "status"),
        # the running cases of every version, without walking the finished ones (the task list's
        # business names count them on every page; migration checks)
        Index("ix_cases_status_version", "status", "process_version_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_number: Mapped[str] = mapped_column(String(40), unique=True)
    process_id: Mapped[str] = mapped_column(String(200))
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    # active | suspended | completed | cancelled
    status: Mapped[str] = mapped_column(String(20))
    open_incidents: Mapped[int] = mapped_column(Integer, default=0)
    buffered_messages: Mapped[int] = mapped_column(Integer, default=0)
    # optimistic lock: every committed step increments it
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    # searchable summary copied from case data (applicant, unit number, id numbers…)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # serialized workflow instance without its spec (the spec lives once per ProcessVersion)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class HumanTask(Base):
    """The index of human tasks, so the task list never deserializes a workflow."""

    __tablename__ = "human_task"
    __table_args__ = (
        Index("ix_human_task_open_role", "state", "role", "created_at", "id"),
        Index("ix_human_task_open_assignee", "state", "assignee", "created_at", "id"),
        Index("ix_human_task_case", "case_id", "state"),
        # a post's unclaimed tasks, oldest first: the task list's pages and its counts per post read
        # only these (small: open tasks, not the millions closed), the counts from the index alone
        Index("ix_human_task_unclaimed", "role", "created_at", "id",
              postgresql_where=text("state = 'open' AND assignee IS NULL"),
              sqlite_where=text("state = 'open' AND assignee IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    bpmn_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(400))
    lane: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    form: Mapped[str | None] = mapped_column(String(400))
    # open | completed | cancelled
    state: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))


class CaseSearchKey(Base):
    """What a clerk may type to find a case (首问负责): its number, unit number, every party's ID
    number and name, kept beside the case so search is an index lookup, not a scan of summaries."""

    __tablename__ = "case_search_key"
    __table_args__ = (
        Index("ix_case_search_key_key", "key", postgresql_ops={"key": "text_pattern_ops"}),
        Index("ix_case_search_key_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    # upper-cased (ID numbers end in X or x)
    key: Mapped[str] = mapped_column(String(200))


class TaskDraft(Base):
    """A task's form as a clerk left it without completing (保存草稿); gone when the task closes."""

    __tablename__ = "task_draft"

    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_by: Mapped[str] = mapped_column(String(200))
    saved_at: Mapped[datetime]


class TimerJob(Base):
    """Work the scheduler must do for a case at a time: fire a timer, or retry a service call."""

    __tablename__ = "timer_job"
    __table_args__ = (
        UniqueConstraint("case_id", "task_guid", "kind", name="uq_timer_job_task"),
        Index("ix_timer_job_due", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    task_guid: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    # timer | retry
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class Incident(Base):
    """Something a person must look at: a case that cannot go on by itself."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_status", "status", "created_at"), Index("ix_incident_case", "case_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    task_guid: Mapped[str | None] = mapped_column(String(36))
    bpmn_id: Mapped[str | None] = mapped_column(String(200))
    # service_fault | business_error | script_error | timeout | engine_error
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    # open | resolved
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    retries: Mapped[int] = mapped_column(Integer, default=0)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)


class Outbox(Base):
    """Messages to the outside world, written in the same transaction as the step that caused them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    topic: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None]
    # pending | delivered | failed (gave up: visible to admins)
    status: Mapped[str] = mapped_column(String(20), default="pending")


class CaseEvent(Base):
    """The audit trail: who did what to a case, when."""

    __tablename__ = "case_event"
    __table_args__ = (Index("ix_case_event_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    task_guid: Mapped[str | None] = mapped_column(String(36))
    bpmn_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InboundMessage(Base):
    """A message for a case (court order, payment callback), kept until the case waits for it."""

    __tablename__ = "inbound_message"
    __table_args__ = (Index("ix_inbound_message_case", "case_id", "delivered_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime]
    received_from: Mapped[str] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True)


class WorkdayOverride(Base):
    """Holidays and make-up working days for years the calendar library does not cover."""

    __tablename__ = "workday_override"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(200))


# ---------------------------------------------------------------------------------------------
# The register 登记簿: units, rights, their holders, certificates. domain/register.py decides
# what goes in; these tables only keep it. A right is never deleted: it ends (status "ended",
# ended_at, end_reason, ended_by_case), so the history of a unit is its rows in order.
# ---------------------------------------------------------------------------------------------


class RegisterUnit(Base):
    """A real-estate unit 不动产单元, identified by its 28-character unit number (GB/T 37346)."""

    __tablename__ = "register_unit"
    __table_args__ = (Index("ix_register_unit_parcel", "parcel_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_number: Mapped[str] = mapped_column(String(28), unique=True)
    # 宗地代码: the first 19 characters of the unit number
    parcel_number: Mapped[str] = mapped_column(String(19))
    # 县级行政区划代码: the first 6 characters
    district_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(400))
    area: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # residential | non_residential
    use: Mapped[str] = mapped_column(String(20))
    building: Mapped[str | None] = mapped_column(String(40))
    floor: Mapped[str | None] = mapped_column(String(20))
    room: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    created_by_case: Mapped[str | None] = mapped_column(String(40))
    # anything else the survey says (structure, land use, area split…), not queried
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RegisterRight(Base):
    """One right or encumbrance on a unit: ownership, mortgage, pre_notice, seizure, objection.

    Typed columns are what queries filter on; the rest of each kind's particulars live in
    `details` (mortgage: mortgagee, mortgagor, amount, term, mode; pre_notice: kind, holder;
    seizure: court, term, kind; objection: applicant, reason, suit).
    """

    __tablename__ = "register_right"
    __table_args__ = (
        Index("ix_register_right_unit", "unit_number", "kind", "status"),
        Index("ix_register_right_case", "case_number"),
        Index("ix_register_right_document", "document_number"),
        Index("ix_register_right_lapse", "kind", "status", "lapses_on"),
        # at most one current ownership per unit, whatever the application code does
        Index("uq_register_right_current_ownership", "unit_number", unique=True,
              postgresql_where=text("kind = 'ownership' AND status = 'current'"),
              sqlite_where=text("kind = 'ownership' AND status = 'current'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_number: Mapped[str] = mapped_column(ForeignKey("register_unit.unit_number"))
    # ownership | mortgage | pre_notice | seizure | objection
    kind: Mapped[str] = mapped_column(String(20))
    # current | ended
    status: Mapped[str] = mapped_column(String(10))
    registered_at: Mapped[datetime]
    # the case (受理编号) that registered it
    case_number: Mapped[str] = mapped_column(String(40))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    ended_by_case: Mapped[str | None] = mapped_column(String(40))
    # seizure: the court's document number 查封文号 (releases and renewals name it)
    document_number: Mapped[str | None] = mapped_column(String(200))
    # seizure: NULL while in effect; 1, 2 … for queued seizures 轮候查封, in the order they take effect
    queue_position: Mapped[int | None] = mapped_column(Integer)
    # objection: the last day a suit can be filed; NULL once a suit is recorded
    lapses_on: Mapped[date | None] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    holders: Mapped[list[RegisterRightHolder]] = relationship(
        back_populates="right", order_by="RegisterRightHolder.position", lazy="selectin",
        cascade="all, delete-orphan",
    )


class RegisterRightHolder(Base):
    """A holder 权利人 of a right: owner, mortgagee, pre-notice holder, objection applicant."""

    __tablename__ = "register_right_holder"
    __table_args__ = (
        Index("ix_register_right_holder_right", "right_id", "position"),
        Index("ix_register_right_holder_id_number", "id_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    right_id: Mapped[int] = mapped_column(ForeignKey("register_right.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    id_type: Mapped[str] = mapped_column(String(40))
    id_number: Mapped[str] = mapped_column(String(64))
    # sole 单独所有 | share 按份共有 | joint 共同共有
    share_mode: Mapped[str] = mapped_column(String(10))
    # the fraction held (0 < share <= 1) for sole and share; NULL for joint
    share: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))

    right: Mapped[RegisterRight] = relationship(back_populates="holders")


class RegisterCertificate(Base):
    """A certificate: title 不动产权证书 or registration 不动产登记证明; numbers are never reused."""

    __tablename__ = "register_certificate"
    __table_args__ = (
        UniqueConstraint("office_code", "kind", "year", "serial", name="uq_register_certificate_serial"),
        Index("ix_register_certificate_right", "right_id"),
        Index("ix_register_certificate_unit", "unit_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(80), unique=True)
    # title | registration
    kind: Mapped[str] = mapped_column(String(20))
    office_code: Mapped[str] = mapped_column(String(12))
    province: Mapped[str] = mapped_column(String(4))
    office_name: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    serial: Mapped[int] = mapped_column(Integer)
    right_id: Mapped[int] = mapped_column(ForeignKey("register_right.id"))
    unit_number: Mapped[str] = mapped_column(String(28))
    case_number: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_by_case: Mapped[str | None] = mapped_column(String(40))


# ---------------------------------------------------------------------------------------------
# Deadlines 限时办结: one clock per case, its pauses (时限中止: the situations of seed 003 §五 that
# are not counted), and stage times for one-hour kinds. domain/deadlines.py decides; these keep.
# ---------------------------------------------------------------------------------------------


class CaseClock(Base):
    """A case's time-limit clock, from acceptance 受理 to registration (登簿; in practice the
    certificate stage's end) or the case's end.

    The limit is copied from the time-limit table when the clock starts, so a later change of the
    table never moves the deadline of a case already accepted. `light` is the light last published
    to the case (the worker sends `deadline_yellow` / `deadline_red` when it changes); the live
    light is computed from `due_at` and the clock.
    """

    __tablename__ = "case_clock"
    __table_args__ = (Index("ix_case_clock_open", "completed_at", "due_at"),)

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id"), primary_key=True, autoincrement=False)
    case_number: Mapped[str] = mapped_column(String(40))
    # a business kind code of processes/time_limits.json (secondhand_transfer, mortgage …)
    business: Mapped[str] = mapped_column(String(60))
    # workdays | minutes
    limit_kind: Mapped[str] = mapped_column(String(10))
    limit_value: Mapped[int] = mapped_column(Integer)
    one_hour: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_at: Mapped[datetime]
    # moves later by the working time the clock stood still
    due_at: Mapped[datetime]
    paused_since: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(40))
    # what the pauses so far added up to: wall-clock seconds, and working days the due date moved
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    paused_workdays: Mapped[int] = mapped_column(Integer, default=0)
    # green | yellow | red
    light: Mapped[str] = mapped_column(String(10))
    light_changed_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # certificate (the certificate stage ended) | completed | cancelled (the case ended)
    ended_by: Mapped[str | None] = mapped_column(String(20))


class CaseClockPause(Base):
    """One stretch of time a case's clock stood still, and why (seed 003 §五 (一)–(四))."""

    __tablename__ = "case_clock_pause"
    __table_args__ = (Index("ix_case_clock_pause_case", "case_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_clock.case_id"))
    # supplement | notice | inspection | policy_housing | land_premium | purchase_restriction | unpaid_tax
    reason: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # working days the due date moved when the pause ended (working-day limits)
    workdays: Mapped[int | None] = mapped_column(Integer)


class CaseStageTime(Base):
    """How long one stage of a case took (受理 acceptance, 审批 review, 出证 certificate; seed 001).

    `minutes` is the stage's time without the time the case's clock stood still within it.
    """

    __tablename__ = "case_stage_time"
    __table_args__ = (
        Index("ix_case_stage_time_case", "case_id", "stage", "started_at"),
        Index("ix_case_stage_time_ended", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    # acceptance | review | certificate
    stage: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    minutes: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))


# ---------------------------------------------------------------------------------------------
# People: the office's user accounts and their API tokens. webapp/accounts.py decides (password
# hashing, lock-out, tokens); these tables only keep.
# ---------------------------------------------------------------------------------------------


class UserAccount(Base):
    """A person who logs in: a clerk, reviewer, registrar, certificate desk, supervisor, admin or designer."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # lower case; what the engine records as the actor (case events, task assignees)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # argon2id, in the PHC string format (parameters and salt included)
    password_hash: Mapped[str] = mapped_column(String(255))
    # role codes of domain/roles.py
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    office: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # consecutive failed logins since the last success or lock-out
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    # part of the login session's user id: bumped when the password changes or the account is
    # disabled, which ends every session opened before
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class ApiToken(Base):
    """A personal token for the JSON API (`Authorization: Bearer …`). Only its SHA-256 is kept."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_user", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # hex SHA-256 of the token; the token itself is shown once, when issued
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
