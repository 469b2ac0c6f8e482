"""The engine: deploy versions, start and advance cases, durably, one transaction per step.

Concurrency: a step locks its case — `BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on
PostgreSQL — and its final UPDATE also checks the case's `lock_version`, so two clerks finishing
parallel branches at once never lose either's work: one wins, the other gets `Conflict` and can
retry on the new version. The task list reads only the `human_task` table.

Speed (bench/engine.py): the frequent steps — start a case, complete a task, take a message —
hold the case as a plain `CaseRow` and run their statements as `storage.db.Prepared`, not
through the ORM; a step's reads go in one `Batch` and all its writes in another (one round
trip each on PostgreSQL); the workflow object of a case's last committed state stays in
memory (hot cases), so a step neither deserializes it nor walks its tree for the before-state;
the state is serialized once per transaction; handlers get a savepoint only if they touch the
session. The rarer steps (cancel, suspend, resume, incidents, timers, migration) keep the ORM
`Case`; `_save` writes either.
"""
from __future__ import annotations

import copy
import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, delete, event, func, insert, literal_column, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import set_committed_value

from domain import calendar, case_summary
from domain.clock import SHANGHAI, Clock
from domain.roles import ROLES
from engine import deployment, sandbox, spiff, versions
from engine.errors import CaseNotActive, Conflict, InvalidInput, NotFound, NotPermitted, TaskNotReady
from engine.spiff import AppParser, SpecBundle
from engine.steps import (
    Step,
    StepScriptEngine,
    advance,
    message_event,
    open_work,
    scheduled_jobs,
    timer_fired,
    timer_fired_events,
    waiting_timers,
)
from handlers.registry import OperatorRegistry, default_registry
from storage.db import Batch, Database, Prepared
from storage.models import (
    Case,
    CaseEvent,
    CaseSearchKey,
    Counter,
    HumanTask,
    InboundMessage,
    Incident,
    Outbox,
    ProcessVersion,
    TimerJob,
    WorkdayOverride,
)

ACTIVE_STATUSES = ("active", "suspended")
MANAGERS = frozenset({"supervisor", "admin"})
MAX_DATA_BYTES = 256 * 1024


@dataclass(frozen=True)
class Actor:
    """Who acts: a user with roles, or the engine itself."""

    name: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def of(cls, name: str, *roles: str) -> Actor:
        return cls(name, frozenset(roles))

    def has(self, role: str | None) -> bool:
        return role is None or role in self.roles

    @property
    def manages(self) -> bool:
        return bool(self.roles & MANAGERS)


SYSTEM = Actor("system", frozenset(ROLES))


@dataclass
class EngineSettings:
    step_time_limit: float = 10.0  # seconds of script and handler time per step
    default_retries: int = 3  # when the diagram's serviceTaskOperator has no <retry>
    retry_delay: float = 10.0  # seconds before the first retry
    retry_backoff_base: int = 2
    retry_max_delay: float = 3600.0
    job_lock_seconds: float = 120.0  # a claimed job returns to the pool if its worker dies
    job_batch: int = 50
    hot_cases: int = 256  # workflow objects kept in memory between steps (0: always deserialize)
    outbox_attempts: int = 8  # sends of an outbox message before it fails for good (an incident)
    outbox_retry_delay: float = 10.0  # seconds before the first resend; doubled each time after
    outbox_max_delay: float = 3600.0


@dataclass(frozen=True)
class VersionInfo:
    id: int
    process_id: str
    version: int
    roles: dict[tuple[str, str], str]  # (process id, bpmn id) -> role, for the version and its callees
    names: dict[tuple[str, str], str]
    forms: dict[tuple[str, str], str]
    processes: frozenset[str] = frozenset()  # the process ids of the version and its callees
    has_timers: bool = True  # False: no timer event anywhere in the version (steps skip looking for them)

    def key(self, task: Any) -> tuple[str, str]:
        """(process id, bpmn id) of a task; a task in an embedded or event subprocess belongs to the
        process that contains it (its sub-workflow is named after the subprocess, not a process)."""
        workflow = task.workflow
        while workflow is not None and workflow.spec.name not in self.processes:
            workflow = workflow.parent_workflow
        return (workflow.spec.name if workflow is not None else task.workflow.spec.name, task.task_spec.bpmn_id)


@dataclass(frozen=True)
class CaseRef:
    id: int
    case_number: str
    status: str
    lock_version: int


@dataclass(eq=False)
class CaseRow:
    """A case as the hot steps (start, complete a task, a message) hold it: read under the case
    lock with one statement and written back with one UPDATE (`_SAVE_CASE`) — not an ORM object,
    whose identity map, attribute events and flushes cost more than the step's own statements.
    The other steps (cancel, resume, incidents, timers, migration) use the ORM `Case`; `_save`
    takes either."""

    id: int
    case_number: str
    process_id: str
    process_version_id: int
    status: str
    open_incidents: int
    buffered_messages: int
    lock_version: int
    ended_at: datetime | None
    status_reason: str | None
    summary: dict[str, Any]
    updated_at: datetime | None = field(default=None, compare=False)  # set when the step is saved; not read


@dataclass(frozen=True)
class TaskRow:
    """The human-task row a completion reads (see `_P_TASK`)."""

    id: int
    case_id: int
    task_guid: str
    bpmn_id: str
    name: str | None
    role: str | None
    assignee: str | None
    state: str
    closed_by: str | None


@dataclass
class TaskPage:
    """What a task list page shows (`Engine.task_page`)."""

    tasks: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)  # unclaimed open tasks per role, at most COUNT_CAP
    mine_count: int = 0  # open tasks the actor holds, at most COUNT_CAP
    process_names: dict[str, str] = field(default_factory=dict)  # process id -> its latest version's name


@dataclass
class JobRun:
    fired: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, db: Database, registry: OperatorRegistry | None = None, clock: Clock | None = None,
                 settings: EngineSettings | None = None, services: Any = None) -> None:
        self.db = db
        # what handlers reach through ctx.services: the departments' adapters (adapters.Departments)
        self.services = services
        self.registry = registry if registry is not None else default_registry()
        self.clock = clock or Clock()
        self.settings = settings or EngineSettings()
        self._specs: dict[int, SpecBundle] = {}
        self._infos: dict[int, VersionInfo] = {}
        self._lock = threading.RLock()
        self.serializer = spiff.make_serializer(self._spec_bundle)
        self.environment = sandbox.SandboxEnvironment(sandbox.default_helpers(self.clock.now))
        self._calendar_loaded = False
        self._hot: OrderedDict[int, tuple[int, BpmnWorkflow, dict[str, Any], dict[Any, Any]]] = OrderedDict()

    # ================================================================== deployments

    def deploy(self, files: list[tuple[str, bytes]], deployed_by: str, comment: str | None = None
               ) -> list[deployment.DeployedVersion]:
        return deployment.deploy(self.db, self.registry, files, deployed_by=deployed_by, now=self.clock.now(),
                                 comment=comment)

    def deploy_paths(self, paths: Iterable[str | Path], deployed_by: str, comment: str | None = None
                     ) -> list[deployment.DeployedVersion]:
        return self.deploy(deployment.read_paths(paths), deployed_by, comment)

    def versions(self, process_id: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            running = dict(s.execute(
                select(Case.process_version_id, func.count()).where(Case.status.in_(ACTIVE_STATUSES))
                .group_by(Case.process_version_id)).all())
            query = select(ProcessVersion).order_by(ProcessVersion.process_id, ProcessVersion.version)
            if process_id:
                query = query.where(ProcessVersion.process_id == process_id)
            return [{
                "id": pv.id, "process_id": pv.process_id, "version": pv.version, "name": pv.name,
                "sha256": pv.sha256, "deployed_by": pv.deployed_by, "deployed_at": pv.deployed_at,
                "comment": pv.comment, "running_cases": running.get(pv.id, 0),
                "dependencies": pv.dependencies,
            } for pv in s.scalars(query)]

    def _spec_bundle(self, version_id: int) -> SpecBundle:
        bundle = self._specs.get(version_id)
        if bundle is not None:
            return bundle
        with self._lock:
            if version_id not in self._specs:
                self._load_version(version_id)
            return self._specs[version_id]

    def version_info(self, version_id: int) -> VersionInfo:
        info = self._infos.get(version_id)
        if info is None:
            with self._lock:
                if version_id not in self._infos:
                    self._load_version(version_id)
                info = self._infos[version_id]
        return info

    def _load_version(self, version_id: int) -> None:
        with self.db.read() as s:
            pv = s.get(ProcessVersion, version_id)
            if pv is None:
                raise NotFound(f"process version {version_id} does not exist")
            closure = deployment.version_closure(s, pv)
            parser = AppParser(validator=None)
            roles: dict[tuple[str, str], str] = {}
            names: dict[tuple[str, str], str] = {}
            forms: dict[tuple[str, str], str] = {}
            added: set[str] = set()
            for member in closure:
                if member.bpmn_xml not in added:  # one file may define a process and the one it calls
                    parser.add_bpmn_str(member.bpmn_xml.encode("utf-8"), filename=member.filename)
                    added.add(member.bpmn_xml)
                meta = member.meta or {}
                for node, role in (meta.get("roles") or {}).items():
                    roles[(member.process_id, node)] = role
                for node, name in (meta.get("names") or {}).items():
                    names[(member.process_id, node)] = name
                for node, form in (meta.get("forms") or {}).items():
                    forms[(member.process_id, node)] = form
            spec = parser.get_spec(pv.process_id)
            subs = parser.get_subprocess_specs(pv.process_id)
            self._specs[version_id] = (spec, subs)
            self._infos[version_id] = VersionInfo(pv.id, pv.process_id, pv.version, roles, names, forms,
                                                  frozenset(m.process_id for m in closure),
                                                  has_timers=spiff.has_timers(spec, subs))

    # versions side by side and moving cases between them: engine/versions.py

    def diff_versions(self, old_id: int, new_id: int) -> versions.VersionDiff:
        return versions.diff_versions(self, old_id, new_id)

    def check_migration(self, case_id: int, target_version_id: int | None = None) -> versions.MigrationCheck:
        return versions.check_migration(self, case_id, target_version_id)

    def migrate_case(self, case_id: int, target_version_id: int | None, actor: Actor, comment: str | None = None,
                     expected_version: int | None = None) -> versions.MigrationCheck:
        return versions.migrate_case(self, case_id, target_version_id, actor, comment, expected_version)

    def migrate_cases(self, from_version_id: int, target_version_id: int | None, actor: Actor,
                      comment: str | None = None) -> versions.BulkMigration:
        return versions.migrate_cases(self, from_version_id, target_version_id, actor, comment)

    def process_steps(self, version_id: int) -> list[versions.ProcessStep]:
        return versions.process_steps(self, version_id)

    def latest_version_id(self, session: Session, process_id: str) -> int:
        version_id = session.scalar(_LATEST_VERSION, {"pid": process_id})
        if version_id is None:
            raise NotFound(f"no process '{process_id}' is deployed")
        return version_id

    # ================================================================== cases

    def start_case(self, process_id: str, data: dict[str, Any] | None, actor: Actor,
                   summary: dict[str, Any] | None = None) -> CaseRef:
        data = _check_data(data or {})
        self._ensure_calendar()
        now = self.clock.now()
        with self.db.write() as s:
            conn = s.connection()
            # one round trip on PostgreSQL; a number drawn for a process that is not deployed is
            # given back by the rollback
            reads = Batch()
            reads.add(_P_LATEST_VERSION, {"pid": process_id})
            reads.add(_P_NEXT_COUNTER, {"b_name": _case_counter(now)})
            version, counter = (r.first() for r in reads.run(conn))
            if version is None:
                raise NotFound(f"no process '{process_id}' is deployed")
            version_id = version[0]
            info = self.version_info(version_id)
            spec, subs = self._spec_bundle(version_id)
            case_number = _case_number(now, counter[0])
            case = CaseRow(0, case_number, process_id, version_id, "active", 0, 0, 0, None, None, summary or {})
            case.id = _P_INSERT_CASE.first(conn, {
                "b_number": case_number, "b_process": process_id, "b_version": version_id, "b_status": "active",
                "b_by": actor.name, "b_at": now, "b_summary": case.summary})[0]
            step = Step(self, case, actor.name, now, info, session=s)
            workflow = BpmnWorkflow(spec, subs)
            workflow.spec_ref = version_id
            workflow.task_tree.data.update(data)
            for task in workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
            step.event("case_started", None, process_id=process_id, version=info.version, data=data)
            self._run(step, workflow, lambda wf: None)
            self._save(s, step, workflow, before_ready={}, before_jobs={}, new=True)
            return CaseRef(case.id, case.case_number, case.status, case.lock_version)

    def _next_case_number(self, s: Session, now: datetime) -> str:
        """The year's next case number: storage.counters.next_counter's statement, prepared."""
        return _case_number(now, _P_NEXT_COUNTER.first(s.connection(), {"b_name": _case_counter(now)})[0])

    def complete_task(self, task_id: int, data: dict[str, Any] | None, actor: Actor,
                      expected_version: int | None = None) -> CaseRef:
        data = _check_data(data or {})
        with self._case_step(task_id=task_id, actor=actor, expected_version=expected_version) as (s, step, wf, ht):
            task = wf.get_task_from_id(UUID(ht.task_guid))
            if task is None or task.state != TaskState.READY:
                state = TaskState.get_name(task.state) if task is not None else "gone"
                raise TaskNotReady(f"任务「{ht.name or ht.bpmn_id}」当前状态为 {state}，不能办理")
            if ht.assignee and ht.assignee != actor.name and not actor.manages:
                raise NotPermitted(f"任务「{ht.name or ht.bpmn_id}」已由 {ht.assignee} 认领")
            task.data.update(data)
            step.event("task_completed", task, data=data)
            try:
                task.run()
            except Exception as err:  # noqa: BLE001 — a failing post-script is an incident, not a 500
                step.incident("script_error", f"{type(err).__name__}: {err}", task)
            self._run(step, wf, self._deliverer(s, step))
        return self._ref(step.case)

    def claim_task(self, task_id: int, actor: Actor) -> dict[str, Any]:
        """Take an open task of one of the actor's roles; returns the task (as `task` gives it). The
        claim is one conditional UPDATE (still open, still unclaimed): of two clerks claiming at
        once, exactly one gets it, the other a Conflict naming the holder, without a row lock held
        across round trips."""
        with self.db.write() as s:
            conn = s.connection()
            row = _P_TASK_BY_ID.first(conn, {"b_id": task_id})
            if row is None:
                raise NotFound(f"任务 {task_id} 不存在")
            task = _case_task(row)
            label = task["name"] or task["bpmn_id"]
            if task["state"] == "open" and not actor.has(task["role"]):
                raise NotPermitted(_not_your_role(label, task["role"], actor))
            if _claimed_already(task, label, actor):
                return task
            now = self.clock.now()
            if _P_CLAIM_TASK.execute(conn, {"b_id": task_id, "b_assignee": actor.name, "b_at": now}) == 1:
                _P_INSERT_EVENT.execute(conn, {
                    "b_case_id": task["case_id"], "b_at": now, "b_actor": actor.name, "b_kind": "task_claimed",
                    "b_task_guid": task["task_guid"], "b_bpmn_id": task["bpmn_id"], "b_detail": {}})
                return {**task, "assignee": actor.name}
            # claimed or closed by another transaction since the read: say by whom (or, if that
            # was the same clerk's other click, hand back the task they now hold)
            task = _case_task(_P_TASK_BY_ID.first(conn, {"b_id": task_id}) or row)
            if _claimed_already(task, label, actor):
                return task
            raise Conflict(f"任务「{label}」刚被他人处理，请刷新后重试")

    def release_task(self, task_id: int, actor: Actor) -> None:
        with self.db.write() as s:
            ht = self._task_for_update(s, task_id)
            if ht.assignee is None:
                return
            if ht.assignee != actor.name and not actor.manages:
                raise NotPermitted(f"任务由 {ht.assignee} 认领，只有本人或主管可以释放")
            self._audit(s, ht.case_id, actor.name, "task_released", ht, previous=ht.assignee)
            ht.assignee = None
            ht.claimed_at = None

    def reassign_task(self, task_id: int, to_user: str, actor: Actor, reason: str | None = None) -> None:
        """Backup posts (顶岗补位): a supervisor hands a task to another clerk."""
        if not actor.manages:
            raise NotPermitted("只有主管可以转派任务")
        if not to_user.strip():
            raise InvalidInput("请指定接手人")
        with self.db.write() as s:
            ht = self._task_for_update(s, task_id)
            self._audit(s, ht.case_id, actor.name, "task_reassigned", ht, previous=ht.assignee, to=to_user,
                        reason=reason)
            ht.assignee = to_user
            ht.claimed_at = self.clock.now()

    def reassign_all(self, from_user: str, to_user: str, actor: Actor, reason: str | None = None) -> int:
        """Move every open task an absent clerk holds to a colleague; returns how many moved."""
        if not actor.manages:
            raise NotPermitted("只有主管可以转派任务")
        with self.db.write() as s:
            tasks = s.scalars(select(HumanTask).where(HumanTask.state == "open", HumanTask.assignee == from_user)
                              .with_for_update()).all()
            for ht in tasks:
                self._audit(s, ht.case_id, actor.name, "task_reassigned", ht, previous=from_user, to=to_user,
                            reason=reason)
                ht.assignee = to_user
                ht.claimed_at = self.clock.now()
            return len(tasks)

    def send_message(self, case_id: int, name: str, payload: dict[str, Any] | None, actor: Actor,
                     key: str | None = None) -> dict[str, Any]:
        """Hand a message to a case; it is delivered now if the case waits for it, else buffered."""
        payload = _check_data(payload or {})
        if not name or not name.strip():
            raise InvalidInput("message name is empty")
        try:
            return self._send_message(case_id, name, payload, actor, key)
        except IntegrityError:
            if key is None:
                raise
            # the same key arrived twice at once: the other transaction stored it; answer as a replay
            return self._send_message(case_id, name, payload, actor, key)

    def _send_message(self, case_id: int, name: str, payload: dict[str, Any], actor: Actor,
                      key: str | None) -> dict[str, Any]:
        with self.db.write() as s:
            conn = s.connection()
            reads = Batch()  # one round trip on PostgreSQL: the lock, then the key under it
            reads.add(_P_CASE if self.db.is_sqlite else _P_CASE_LOCKED, {"b_id": case_id})
            if key is not None:
                reads.add(_P_MESSAGE_BY_KEY, {"b_key": key})
            found = reads.run(conn)
            if found[0].first() is None:
                raise NotFound(f"案件 {case_id} 不存在")
            case = CaseRow(*found[0].first())
            if key is not None:
                existing = found[1].first()
                if existing is not None:
                    # A replay is the same message to the same case. The same key for another case
                    # or message is a sender's mistake: answering "duplicate" would drop it silently.
                    old_id, old_case, old_name, delivered_at = existing
                    if old_case != case_id or old_name != name:
                        raise Conflict(f"幂等键 {key} 已用于案件 {old_case} 的消息"
                                       f"「{old_name}」，不能再用于案件 {case_id} 的消息「{name}」")
                    return {"id": old_id, "delivered": delivered_at is not None, "duplicate": True}
            if case.status in ("completed", "cancelled"):
                raise CaseNotActive(f"案件 {case.case_number} 已{_status_label(case.status)}，不能再接收消息")
            now = self.clock.now()
            msg_id = _P_INSERT_MESSAGE.first(conn, {
                "b_case_id": case.id, "b_name": name, "b_payload": payload, "b_at": now, "b_from": actor.name,
                "b_key": key})[0]
            # with nothing buffered before (the case row is locked: nothing else can buffer one
            # now), this message is the only one waiting: no need to read the buffer back
            known = [(msg_id, name, payload)] if case.buffered_messages == 0 else None
            case.buffered_messages += 1
            if case.status == "active":
                step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
                # the audit row goes with the step's own (first, so before what the step did)
                step.event("message_received", None, name=name, message_id=msg_id)
                self._run(step, wf, self._deliverer(s, step, known))
                self._save(s, step, wf, before_ready, before_jobs)
                return {"id": msg_id, "delivered": msg_id in step.delivered, "duplicate": False}
            # suspended: the message waits in the buffer until the case resumes
            _P_INSERT_EVENT.execute(conn, {
                "b_case_id": case.id, "b_at": now, "b_actor": actor.name, "b_kind": "message_received",
                "b_task_guid": None, "b_bpmn_id": None, "b_detail": {"name": name, "message_id": msg_id}})
            _P_BUFFERED.execute(conn, {"b_id": case.id, "b_buffered": case.buffered_messages})
            return {"id": msg_id, "delivered": False, "duplicate": False}

    def cancel_case(self, case_id: int, reason: str, actor: Actor) -> None:
        self._require_manager(actor, "撤销案件")
        self._require_reason(reason)
        with self.db.write() as s:
            case = self._lock_case(s, case_id)
            if case.status in ("completed", "cancelled"):
                raise CaseNotActive(f"案件 {case.case_number} 已{_status_label(case.status)}")
            step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
            wf.cancel()
            step.event("case_cancelled", None, reason=reason)
            case.status = "cancelled"
            case.status_reason = reason
            case.ended_at = step.now
            for inc in s.scalars(select(Incident).where(Incident.case_id == case.id, Incident.status == "open")):
                inc.status, inc.resolved_by, inc.resolved_at = "resolved", actor.name, step.now
                inc.comment = f"案件撤销：{reason}"
            case.open_incidents = 0
            self._save(s, step, wf, before_ready, before_jobs)

    def suspend_case(self, case_id: int, reason: str, actor: Actor) -> None:
        self._require_manager(actor, "挂起案件")
        self._require_reason(reason)
        with self.db.write() as s:
            case = self._lock_case(s, case_id)
            if case.status != "active":
                raise CaseNotActive(f"案件 {case.case_number} 当前{_status_label(case.status)}，不能挂起")
            case.status, case.status_reason = "suspended", reason
            case.lock_version += 1
            case.updated_at = self.clock.now()
            self._audit(s, case.id, actor.name, "case_suspended", None, reason=reason)

    def resume_case(self, case_id: int, reason: str, actor: Actor) -> None:
        self._require_manager(actor, "恢复案件")
        self._require_reason(reason)
        with self.db.write() as s:
            case = self._lock_case(s, case_id)
            if case.status != "suspended":
                raise CaseNotActive(f"案件 {case.case_number} 当前{_status_label(case.status)}，不能恢复")
            case.status, case.status_reason = "active", None
            self._audit(s, case.id, actor.name, "case_resumed", None, reason=reason)
            step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
            self._run(step, wf, self._deliverer(s, step))
            self._save(s, step, wf, before_ready, before_jobs)

    # ================================================================== incidents

    def incidents(self, status: str | None = "open", case_id: int | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = select(Incident, Case.case_number).join(Case, Case.id == Incident.case_id).order_by(Incident.id)
            if status:
                q = q.where(Incident.status == status)
            if case_id is not None:
                q = q.where(Incident.case_id == case_id)
            return [{
                "id": inc.id, "case_id": inc.case_id, "case_number": number, "task_guid": inc.task_guid,
                "bpmn_id": inc.bpmn_id, "kind": inc.kind, "message": inc.message, "details": inc.details,
                "status": inc.status, "created_at": inc.created_at, "retries": inc.retries,
                "resolved_by": inc.resolved_by, "comment": inc.comment,
            } for inc, number in s.execute(q)]

    def retry_incident(self, incident_id: int, actor: Actor, comment: str | None = None) -> dict[str, Any]:
        """Run the failed step again now; returns the incident as it stands afterwards."""
        self._require_manager(actor, "重试事件")
        with self.db.write() as s:
            inc = self._open_incident(s, incident_id)
            case = self._lock_case(s, inc.case_id)
            if case.status != "active":
                raise CaseNotActive(f"案件 {case.case_number} 当前{_status_label(case.status)}，请先恢复再重试")
            step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
            inc.retries += 1
            task = wf.get_task_from_id(UUID(inc.task_guid)) if inc.task_guid else None
            if task is not None and task.state in (TaskState.STARTED, TaskState.ERROR):
                for key in ("incident", "attempts", "retry_at", "last_error"):
                    task.internal_data.pop(key, None)
                task._set_state(TaskState.READY)
            step.event("incident_retried", task, incident_id=inc.id, comment=comment)
            self._run(step, wf, self._deliverer(s, step))
            self._save(s, step, wf, before_ready, before_jobs)
            return {"id": inc.id, "status": inc.status, "message": inc.message, "retries": inc.retries}

    def resolve_incident(self, incident_id: int, comment: str, actor: Actor,
                         result: dict[str, Any] | None = None) -> None:
        """Close an incident. With `result`, the failed service task is completed with it instead.

        Without a result the incident may only be closed if nothing in the case still waits on it;
        otherwise the case would be stuck with no one told.
        """
        self._require_manager(actor, "处理事件")
        self._require_reason(comment, what="说明")
        with self.db.write() as s:
            inc = self._open_incident(s, incident_id)
            case = self._lock_case(s, inc.case_id)
            step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
            task = wf.get_task_from_id(UUID(inc.task_guid)) if inc.task_guid else None
            blocked = task is not None and task.state in (TaskState.STARTED, TaskState.ERROR)
            if result is not None:
                if task is None or not blocked:
                    raise InvalidInput("该事件对应的任务已不在等待状态，不能以结果完成")
                result = _check_data(result)
                for key in ("incident", "attempts", "retry_at", "last_error"):
                    task.internal_data.pop(key, None)
                variable = getattr(task.task_spec, "result_variable", None)
                if variable:
                    task.data[variable] = result
                else:
                    task.data.update(result)
                task._set_state(TaskState.READY)
                with self._engine_clock():
                    task.complete()
            elif blocked and case.status in ACTIVE_STATUSES:
                raise InvalidInput(
                    f"任务 {inc.bpmn_id} 仍因此事件停止；请重试、给出结果以完成该任务，或撤销案件")
            self._close_incident(inc, actor.name, step.now, comment)
            case.open_incidents = max(0, case.open_incidents - 1)
            step.event("incident_resolved", task, incident_id=inc.id, comment=comment, with_result=result is not None)
            if case.status == "active":
                self._run(step, wf, self._deliverer(s, step))
            self._save(s, step, wf, before_ready, before_jobs)

    # ================================================================== timers and retries

    def run_due_jobs(self, worker: str = "worker", limit: int | None = None) -> JobRun:
        """Fire due timers and service retries. Safe with many workers: each job is claimed once."""
        run = JobRun()
        self._ensure_calendar()
        for job_id in self._claim_jobs(worker, limit or self.settings.job_batch):
            try:
                if self._run_job(job_id, worker):
                    run.fired += 1
                else:
                    run.skipped += 1
            except Exception as err:  # noqa: BLE001 — one bad job must not stop the others
                run.failed += 1
                run.errors.append(f"job {job_id}: {type(err).__name__}: {err}")
                self._job_failed(job_id, err)
        return run

    def _claim_jobs(self, worker: str, limit: int) -> list[int]:
        now = self.clock.now()
        until = now + timedelta(seconds=self.settings.job_lock_seconds)
        with self.db.write() as s:
            q = (select(TimerJob.id).join(Case, Case.id == TimerJob.case_id)
                 .where(TimerJob.due_at <= now, Case.status == "active",
                        or_(TimerJob.locked_until.is_(None), TimerJob.locked_until < now))
                 .order_by(TimerJob.due_at).limit(limit))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True, of=TimerJob)
            ids = list(s.scalars(q))
            if ids:
                s.execute(update(TimerJob).where(TimerJob.id.in_(ids)).values(locked_by=worker, locked_until=until))
            return ids

    def _run_job(self, job_id: int, worker: str) -> bool:
        with self.db.write() as s:
            job = s.get(TimerJob, job_id)
            if job is None or job.locked_by != worker:
                return False
            case = self._lock_case(s, job.case_id)
            # read again under the case lock: while this worker waited for it, its lease may have
            # run out and another worker run the job (deleted) or taken it over (locked_by)
            job = s.scalars(select(TimerJob).where(TimerJob.id == job_id)
                            .execution_options(populate_existing=True)).first()
            if job is None or job.locked_by != worker:
                return False
            if case.status != "active":
                return False
            step, wf, before_ready, before_jobs = self._open_step(s, case, SYSTEM)
            task = wf.get_task_from_id(UUID(job.task_guid))
            if job.kind == "retry" and task is not None and task.state == TaskState.STARTED \
                    and task.internal_data.get("retry_at"):
                task.internal_data.pop("retry_at")
                task._set_state(TaskState.READY)
                step.event("service_retry", task, attempt=task.internal_data.get("attempts", 0) + 1)
            elif job.kind == "timer" and task is not None and task.state == TaskState.WAITING:
                # SpiffWorkflow fires a timer only once its due time has passed (`due < now`), while
                # jobs are claimed at `due_at <= now`: fire as of just past the due time, or a tick
                # exactly on time would claim the job, fire nothing and lock it for job_lock_seconds.
                fire_at = max(self.clock.now(), job.due_at + timedelta(microseconds=1))
                timers = waiting_timers(wf)
                due_before = next((due for t, due in timers if t is task), None)
                with self._engine_clock(lambda: fire_at):
                    wf.refresh_timers()  # fires every overdue timer of the case, not only this one
                if not timer_fired(task, due_before):  # the workflow's due time is later than the row's
                    actual = scheduled_jobs(wf).get((job.task_guid, "timer"))
                    if actual is not None:
                        job.due_at = actual[0]
                    job.locked_by = job.locked_until = None
                    return False
                step.events.extend(timer_fired_events(wf, timers))
            else:
                s.delete(job)  # stale: the task moved on by another way
                before_jobs.pop((job.task_guid, job.kind), None)
                return False
            self._run(step, wf, self._deliverer(s, step))
            self._save(s, step, wf, before_ready, before_jobs)
            return True

    def _job_failed(self, job_id: int, err: Exception) -> None:
        with self.db.write() as s:
            job = s.get(TimerJob, job_id)
            if job is None:
                return
            job.attempts += 1
            job.last_error = f"{type(err).__name__}: {err}"[:2000]
            job.locked_by = None
            job.locked_until = self.clock.now() + timedelta(seconds=min(30 * 2 ** job.attempts, 3600))
            if job.attempts == 5:
                case = s.get(Case, job.case_id)
                s.add(Incident(case_id=job.case_id, task_guid=job.task_guid, bpmn_id=job.bpmn_id, kind="engine_error",
                               message=f"scheduled {job.kind} failed {job.attempts} times: {job.last_error}",
                               status="open", created_at=self.clock.now(), retries=0))
                if case is not None:
                    case.open_incidents += 1

    def next_due(self) -> datetime | None:
        with self.db.read() as s:
            return s.scalar(select(func.min(TimerJob.due_at)))

    # ================================================================== outbox

    def deliver_outbox(self, senders: dict[str, Callable[[dict[str, Any], str], None]], worker: str = "worker",
                       limit: int = 50, max_attempts: int | None = None) -> JobRun:
        """Send pending outbox messages with the sender registered for their topic, each once. A
        failed send is tried again after outbox_retry_delay × 2^(attempts − 1) seconds (at most
        outbox_max_delay), up to `max_attempts` (default: the settings' outbox_attempts)."""
        run = JobRun()
        max_attempts = max_attempts or self.settings.outbox_attempts
        now = self.clock.now()
        until = now + timedelta(seconds=self.settings.job_lock_seconds)
        with self.db.write() as s:
            q = (select(Outbox.id).where(Outbox.status == "pending", Outbox.due_at <= now,
                                         or_(Outbox.locked_until.is_(None), Outbox.locked_until < now))
                 .order_by(Outbox.id).limit(limit))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if ids:
                s.execute(update(Outbox).where(Outbox.id.in_(ids)).values(locked_by=worker, locked_until=until))
        for msg_id in ids:
            with self.db.read() as s:
                msg = s.get(Outbox, msg_id)
                topic, payload, key = msg.topic, dict(msg.payload), msg.idempotency_key
            sender = senders.get(topic)
            error = None
            if sender is None:
                error = f"no sender is configured for topic '{topic}'"
            else:
                try:
                    sender(payload, key)
                except Exception as err:  # noqa: BLE001 — recorded on the row, retried with back-off
                    error = f"{type(err).__name__}: {err}"
            with self.db.write() as s:
                msg = s.get(Outbox, msg_id)
                msg.locked_by = msg.locked_until = None
                if error is None:
                    msg.status, msg.delivered_at = "delivered", self.clock.now()
                    run.fired += 1
                    continue
                msg.attempts += 1
                msg.last_error = error[:2000]
                run.failed += 1
                run.errors.append(f"outbox {msg_id}: {error}")
                if msg.attempts >= max_attempts:
                    msg.status = "failed"
                    if msg.case_id is not None:
                        s.add(Incident(case_id=msg.case_id, kind="outbox_failed", status="open",
                                       message=f"message '{topic}' could not be sent after {msg.attempts} "
                                               f"attempts: {error}", created_at=self.clock.now(), retries=0))
                        case = s.get(Case, msg.case_id)
                        case.open_incidents += 1
                else:
                    delay = self.settings.outbox_retry_delay * 2 ** (msg.attempts - 1)
                    msg.due_at = self.clock.now() + timedelta(seconds=min(delay, self.settings.outbox_max_delay))
        return run

    # ================================================================== queries

    def task_list(self, actor: Actor, *, role: str | None = None, mine_only: bool = False, limit: int = 50,
                  offset: int = 0, search: str | None = None) -> list[dict[str, Any]]:
        """My tasks and my roles' unclaimed tasks, oldest first (see `task_page`)."""
        return self.task_page(actor, role=role, mine_only=mine_only, limit=limit, offset=offset,
                              search=search).tasks

    def task_page(self, actor: Actor, *, role: str | None = None, mine_only: bool = False, limit: int = 50,
                  offset: int = 0, search: str | None = None, with_counts: bool = False) -> TaskPage:
        """A task list page: my tasks and my roles' unclaimed tasks, oldest first, and with
        `with_counts` what the page shows beside them (unclaimed tasks per role, my open tasks, the
        business names).

        One small query per source (mine; each role's unclaimed), each walking an index in
        created order and stopping at `offset + limit`, merged by the database, which then reads
        the tasks and cases of only the merged first `offset + limit`: an OR across the sources
        would make it sort every open task of the office on each call. All the page's statements
        go to PostgreSQL together, in one round trip.
        """
        want = offset + limit
        roles = [role] if role else sorted(actor.roles)
        params: dict[str, Any] = {}
        if search:
            params["b_key"] = _key_prefix(search)
        params["b_assignee"] = actor.name
        listed_roles = [] if mine_only else roles
        params.update({f"b_role{i}": r for i, r in enumerate(listed_roles)})
        batch = Batch()
        statement = _task_search_statement if search else _task_list_statement
        listed = batch.add(statement(len(listed_roles), want), params)
        all_roles = sorted(actor.roles)
        if with_counts:
            counted = [batch.add(_P_UNCLAIMED_COUNT, {"b_role": r}) for r in all_roles]
            mine_counted = batch.add(_P_MINE_COUNT, {"b_assignee": actor.name})
            named = batch.add(_P_PROCESS_NAMES)
        with self.db.read_engine.connect() as conn:
            results = batch.run(conn)
        page = TaskPage([_case_task(r) for r in results[listed].rows[offset:want]])
        if with_counts:
            page.counts = {r: int(results[i].rows[0][0]) for r, i in zip(all_roles, counted, strict=True)}
            page.mine_count = int(results[mine_counted].rows[0][0])
            page.process_names = _names(results[named].rows)
        return page

    def process_names(self) -> dict[str, str]:
        """process id -> the name of its latest version (the business kind), without loading any
        version's XML."""
        with self.db.read_engine.connect() as conn:
            return _names(_P_PROCESS_NAMES.all(conn))

    def task(self, task_id: int) -> dict[str, Any]:
        """One task, as `case_tasks` and `task_list` give it (open or closed)."""
        with self.db.read_engine.connect() as conn:
            row = _P_TASK_BY_ID.first(conn, {"b_id": task_id})
        if row is None:
            raise NotFound(f"任务 {task_id} 不存在")
        return _case_task(row)

    @staticmethod
    def _search_key_cases(text: str) -> Any:
        return select(CaseSearchKey.case_id).where(CaseSearchKey.key.like(_key_prefix(text), escape="\\"))

    def find_cases(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        """Cases a clerk finds by typing their number, unit number, a party's ID number or name, or
        the beginning of one (首问负责), newest first."""
        if not text.strip():
            return []
        with self.db.read() as s:
            rows = s.scalars(select(Case).options(defer(Case.state))
                             .where(Case.id.in_(self._search_key_cases(text)))
                             .order_by(Case.started_at.desc(), Case.id.desc()).limit(limit)).all()
            return [self._case_dict(s, c) for c in rows]

    def case_tasks(self, case_id: int, open_only: bool = True) -> list[dict[str, Any]]:
        q = _P_CASE_TASKS_OPEN if open_only else _P_CASE_TASKS
        with self.db.read_engine.connect() as conn:
            return [_case_task(r) for r in q.all(conn, {"b_case_id": case_id})]

    def get_case(self, case_id: int) -> dict[str, Any]:
        with self.db.read() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"案件 {case_id} 不存在")
            return self._case_dict(s, case)

    def find_case(self, case_number: str) -> dict[str, Any]:
        with self.db.read() as s:
            case = s.scalars(select(Case).where(Case.case_number == case_number)).first()
            if case is None:
                raise NotFound(f"案件号 {case_number} 不存在")
            return self._case_dict(s, case)

    def case_data(self, case_id: int) -> dict[str, Any]:
        """The case's data as its latest finished or waiting task sees it. A hot case's workflow is
        read in memory (a task page and a form check each ask this; deserializing the state
        costs milliseconds); it is taken out of the cache meanwhile, so no step shares it."""
        with self.db.read_engine.connect() as conn:
            found = _P_CASE_VERSION.first(conn, {"b_id": case_id})
            if found is None:
                raise NotFound(f"案件 {case_id} 不存在")
            with self._lock:
                entry = self._hot.pop(case_id, None)
            if entry is not None and entry[0] == found[0]:
                try:  # a copy: the workflow lives on for the next step
                    return copy.deepcopy(_data_of(entry[1]))
                finally:
                    with self._lock:
                        if case_id not in self._hot:  # a step may have kept a newer one meanwhile
                            self._hot[case_id] = entry
            state = _P_CASE_STATE.first(conn, {"b_id": case_id})
        return _data_of(self.serializer.deserialize_json(state[0]))

    def history(self, case_id: int) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"id": e.id, "at": e.at, "actor": e.actor, "kind": e.kind, "task_guid": e.task_guid,
                     "bpmn_id": e.bpmn_id, "detail": e.detail}
                    for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))]

    def _refresh_summary(self, s: Session, case: Case | CaseRow, data: dict[str, Any], new: bool,
                         writes: Batch | None = None) -> None:
        """Keep the case's summary and search keys up with what its data now says (written now, or
        with the step's other writes when `writes` is given)."""
        before = case.summary or {}
        summary = case_summary.merged(before, case_summary.summarize(data))
        if summary == before and not new:
            return
        old_keys = set() if new else set(case_summary.search_keys(case.case_number, before))
        keys = [k for k in case_summary.search_keys(case.case_number, summary) if k not in old_keys]
        batch = writes if writes is not None else Batch()
        if summary != before:
            batch.add(_P_SUMMARY, {"b_id": case.id, "b_summary": summary})
        batch.add_many(_P_INSERT_SEARCH_KEY, [{"b_case_id": case.id, "b_key": k} for k in keys])
        if writes is None:
            batch.run(s.connection())
        if isinstance(case, Case):
            set_committed_value(case, "summary", summary)
        else:
            case.summary = summary

    def _case_dict(self, s: Session, case: Case) -> dict[str, Any]:
        pv = s.get(ProcessVersion, case.process_version_id)
        return {
            "id": case.id, "case_number": case.case_number, "process_id": case.process_id,
            "process_version_id": case.process_version_id, "version": pv.version if pv else None,
            "status": case.status, "status_reason": case.status_reason, "open_incidents": case.open_incidents,
            "buffered_messages": case.buffered_messages, "lock_version": case.lock_version,
            "started_by": case.started_by, "started_at": case.started_at, "updated_at": case.updated_at,
            "ended_at": case.ended_at, "summary": case.summary,
        }

    # ================================================================== step machinery

    @contextmanager
    def _case_step(self, *, task_id: int, actor: Actor, expected_version: int | None
                   ) -> Iterator[tuple[Session, Step, BpmnWorkflow, TaskRow]]:
        with self.db.write() as s:
            ht, case = self._lock_task_case(s, task_id)
            if ht.state != "open":
                by = f"已由 {ht.closed_by} " if ht.closed_by else "已"
                raise TaskNotReady(f"任务「{ht.name or ht.bpmn_id}」{by}办结或取消，无需再办")
            self._check_task_role(ht, actor)
            if case.status != "active":
                raise CaseNotActive(f"案件 {case.case_number} 当前{_status_label(case.status)}，不能办理任务")
            if expected_version is not None and case.lock_version != expected_version:
                raise Conflict(f"案件 {case.case_number} 已被他人更新（版本 {expected_version} → "
                               f"{case.lock_version}），请刷新后重新提交")
            step, wf, before_ready, before_jobs = self._open_step(s, case, actor)
            with self._engine_clock():  # completing a task arms the timers that follow it
                yield s, step, wf, ht
            self._save(s, step, wf, before_ready, before_jobs)

    def _open_step(self, s: Session, case: Case | CaseRow, actor: Actor
                   ) -> tuple[Step, BpmnWorkflow, dict[str, Any], dict[tuple[str, str], tuple[datetime, str]]]:
        self._ensure_calendar()
        info = self.version_info(case.process_version_id)
        step = Step(self, case, actor.name, self.clock.now(), info, session=s)
        hot = self._take_hot(case)
        if hot is not None:
            wf, ready, jobs = hot
        else:
            if isinstance(case, CaseRow):
                wf = self.serializer.deserialize_json(_P_CASE_STATE.first(s.connection(), {"b_id": case.id})[0])
            else:
                wf = self._deserialize(case)
            ready, jobs = open_work(wf)
        wf.script_engine = StepScriptEngine(step, self.environment)
        return step, wf, ready, jobs

    def _deserialize(self, case: Case) -> BpmnWorkflow:
        wf = self.serializer.deserialize_json(case.state)
        return wf

    def _run(self, step: Step, wf: BpmnWorkflow, deliver: Callable[[BpmnWorkflow], bool]) -> None:
        wf.script_engine = StepScriptEngine(step, self.environment)
        with self._engine_clock(), sandbox.step_deadline(self.settings.step_time_limit):
            advance(step, wf, deliver)

    @contextmanager
    def _engine_clock(self, now: Callable[[], datetime] | None = None) -> Iterator[None]:
        """SpiffWorkflow's timers read this clock (not the wall clock) while the block runs.

        Every call that can move a workflow must run inside it: a timer's due time is computed
        the moment the task before it completes, which for a user task is in `task.run()`.
        """
        token = spiff.using_clock(now or self.clock.now)
        try:
            yield
        finally:
            spiff.reset_clock(token)

    def _deliverer(self, s: Session, step: Step, known: list[tuple[int, str, Any]] | None = None
                   ) -> Callable[[BpmnWorkflow], bool]:
        """Delivers buffered messages something in the case now catches; True if any was delivered.

        Each message is offered to the workflow: intermediate catch events and receive tasks that
        wait for it, and event subprocesses whose message start listens all along (those are not in
        SpiffWorkflow's `waiting_events`). A message nothing catches stays buffered. `known`: the
        case's buffered messages (id, name, payload) when the caller knows them all.
        """

        def deliver(wf: BpmnWorkflow) -> bool:
            case = step.case
            if case.buffered_messages <= 0:
                return False
            conn = s.connection()
            delivered = False
            if known is not None:  # fresh copies each round, as if read back from the buffer
                pending = [(msg_id, name, copy.deepcopy(payload)) for msg_id, name, payload in known]
            else:
                pending = _P_PENDING_MESSAGES.all(conn, {"b_case_id": case.id})
            for msg_id, name, payload in pending:
                if msg_id in step.delivered:
                    continue  # handed over earlier in this step; marked delivered by _save
                try:
                    wf.send_event(message_event(name, payload))
                except WorkflowException:
                    continue  # not caught yet: keep it until the case waits for it
                case.buffered_messages -= 1
                step.delivered.append(msg_id)
                step.event("message_delivered", None, name=name, message_id=msg_id)
                delivered = True
            return delivered

        return deliver

    def _save(self, s: Session, step: Step, wf: BpmnWorkflow, before_ready: dict[str, Any],
              before_jobs: dict[tuple[str, str], tuple[datetime, str]], new: bool = False) -> None:
        """Write what the step did: human-task and timer-job rows, incidents, outbox, audit events,
        the summary, the instance state and the case row (checking its lock_version).

        The ORM's pending rows (incidents, messages, audit rows added before the step ran) are
        flushed first; everything else goes as one Batch of prepared statements at the end — one
        round trip on PostgreSQL — in the order the rows must land in."""
        case = step.case
        now = step.now
        info = step.version
        writes = Batch()
        after_ready, after_jobs = open_work(wf)
        if case.status == "cancelled":
            after_ready = {}
        if case.status not in ACTIVE_STATUSES:
            after_jobs = {}
        closed = []
        for guid in before_ready.keys() - after_ready.keys():
            task = wf.get_task_from_id(UUID(guid))
            state = "completed" if task is not None and task.state == TaskState.COMPLETED else "cancelled"
            closed.append({"b_guid": guid, "b_state": state, "b_at": now,
                           "b_by": step.actor if state == "completed" else None})
        writes.add_many(_P_CLOSE_TASK, closed)
        new_tasks = []
        for guid in after_ready.keys() - before_ready.keys():
            task = after_ready[guid]
            key = info.key(task)
            new_tasks.append({
                "b_case_id": case.id, "b_task_guid": guid, "b_bpmn_id": task.task_spec.bpmn_id,
                "b_name": task.task_spec.bpmn_name or info.names.get(key), "b_lane": task.task_spec.lane,
                "b_role": info.roles.get(key), "b_form": info.forms.get(key), "b_state": "open", "b_created_at": now,
            })
        writes.add_many(_P_INSERT_TASK, new_tasks)
        if after_jobs != before_jobs:
            writes.add_many(_P_DELETE_JOB, [
                {"b_case_id": case.id, "b_guid": guid, "b_kind": kind} for guid, kind in before_jobs
                if (guid, kind) not in after_jobs or after_jobs[(guid, kind)] != before_jobs[(guid, kind)]])
            writes.add_many(_P_INSERT_JOB, [
                {"b_case_id": case.id, "b_task_guid": guid, "b_bpmn_id": bpmn_id, "b_kind": kind, "b_due_at": due}
                for (guid, kind), (due, bpmn_id) in after_jobs.items()
                if (guid, kind) not in before_jobs or before_jobs[(guid, kind)] != (due, bpmn_id)])
        for inc in step.incidents:
            existing = None
            if inc["task_guid"]:
                existing = s.scalars(select(Incident).where(
                    Incident.case_id == case.id, Incident.task_guid == inc["task_guid"],
                    Incident.status == "open")).first()
            if existing is not None:
                existing.message, existing.kind, existing.details = inc["message"], inc["kind"], inc["details"]
            else:
                s.add(Incident(case_id=case.id, status="open", created_at=now, retries=0, **inc))
                case.open_incidents += 1
        self._close_recovered_incidents(s, step, wf)
        writes.add_many(_P_MESSAGE_DELIVERED, [{"b_id": msg_id, "b_at": now} for msg_id in step.delivered])
        writes.add_many(_P_INSERT_OUTBOX, [
            {"b_case_id": case.id, "b_topic": msg["topic"], "b_payload": msg["payload"],
             "b_key": msg["idempotency_key"], "b_at": now}
            for msg in step.outbox])
        completed = wf.is_completed()
        if completed and case.status == "active":
            case.status = "completed"
            case.ended_at = now
            step.event("case_completed", None)
        if new or new_tasks or completed:
            newest = after_ready[new_tasks[-1]["b_task_guid"]].data if new_tasks else None
            self._refresh_summary(s, case, newest if newest is not None
                                  else (wf.data if completed else wf.task_tree.data), new, writes)
        # audit rows and incidents added through the session earlier in this transaction
        # (case_resumed, message_received) happened first: they are flushed before the step's events
        s.flush()
        writes.add_many(_P_INSERT_EVENT, [
            {"b_case_id": case.id, "b_at": now, "b_actor": step.actor, "b_kind": ev["kind"],
             "b_task_guid": ev["task_guid"], "b_bpmn_id": ev["bpmn_id"], "b_detail": ev["detail"]}
            for ev in step.events])
        state = spiff.state_bytes(self.serializer, wf)
        old_version = case.lock_version
        if new:
            writes.add(_P_SAVE_NEW_CASE, {
                "b_id": case.id, "b_state": state, "b_at": now, "b_status": case.status, "b_ended": case.ended_at,
                "b_incidents": case.open_incidents, "b_buffered": case.buffered_messages,
                "b_reason": case.status_reason})
        else:
            writes.add(_P_SAVE_CASE, {
                "b_id": case.id, "b_old": old_version, "b_state": state, "b_version": old_version + 1, "b_at": now,
                "b_status": case.status, "b_ended": case.ended_at, "b_incidents": case.open_incidents,
                "b_buffered": case.buffered_messages, "b_reason": case.status_reason})
        saved = writes.run(s.connection())[-1]
        if not new:
            if saved.rowcount != 1:
                raise Conflict(f"案件 {case.case_number} 已被他人同时更新，请刷新后重试")
            if isinstance(case, Case):
                set_committed_value(case, "lock_version", old_version + 1)
            else:
                case.lock_version = old_version + 1
        case.updated_at = now
        if isinstance(case, Case):
            # written above: mark them clean, or the ORM would write the case a second time at commit
            for attr in ("status", "ended_at", "open_incidents", "buffered_messages", "status_reason", "updated_at"):
                set_committed_value(case, attr, getattr(case, attr))
            set_committed_value(case, "state", state)
        self._remember_after_commit(s, case.id, case.lock_version, wf, after_ready, after_jobs)

    # hot cases: the workflow object of a case's latest committed state, so the next step on it
    # (the clerk's next click, the worker's timer) need not deserialize it again

    def _remember_after_commit(self, s: Session, case_id: int, lock_version: int, wf: BpmnWorkflow,
                               ready: dict[str, Any], jobs: dict[tuple[str, str], tuple[datetime, str]]) -> None:
        """After commit, keep the workflow with what the tables now say of it (open tasks, jobs)."""
        if self.settings.hot_cases <= 0:
            return

        def remember() -> None:
            with self._lock:
                self._hot[case_id] = (lock_version, wf, ready, jobs)
                self._hot.move_to_end(case_id)
                while len(self._hot) > self.settings.hot_cases:
                    self._hot.popitem(last=False)

        s.info.setdefault(_AFTER_COMMIT, []).append(remember)

    def _take_hot(self, case: Case) -> tuple[BpmnWorkflow, dict[str, Any], dict[tuple[str, str], Any]] | None:
        with self._lock:
            entry = self._hot.pop(case.id, None)
        if entry is not None and entry[0] == case.lock_version:
            return entry[1], dict(entry[2]), dict(entry[3])
        return None

    def _close_recovered_incidents(self, s: Session, step: Step, wf: BpmnWorkflow) -> None:
        """An incident whose task has moved on (retry worked, task completed) is closed."""
        case = step.case
        if case.open_incidents <= 0:
            return
        raised = {inc["task_guid"] for inc in step.incidents}
        for inc in s.scalars(select(Incident).where(Incident.case_id == case.id, Incident.status == "open")):
            if not inc.task_guid or inc.task_guid in raised:
                continue
            task = wf.get_task_from_id(UUID(inc.task_guid))
            if task is None or task.state not in (TaskState.STARTED, TaskState.ERROR):
                self._close_incident(inc, step.actor, step.now, "任务已继续执行")
                case.open_incidents = max(0, case.open_incidents - 1)
                step.event("incident_closed", task, incident_id=inc.id)

    @staticmethod
    def _close_incident(inc: Incident, who: str, when: datetime, comment: str) -> None:
        inc.status, inc.resolved_by, inc.resolved_at, inc.comment = "resolved", who, when, comment

    def _lock_case(self, s: Session, case_id: int) -> Case:
        """The case row, locked for this step; its state blob is loaded only if the step needs it."""
        q = _CASE_FOR_STEP if self.db.is_sqlite else _CASE_FOR_STEP_LOCKED
        case = s.scalars(q, {"case_id": case_id}).first()
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在")
        return case

    def _lock_task_case(self, s: Session, task_id: int) -> tuple[TaskRow, CaseRow]:
        """A human task and its case, the case locked for this step, and the task read after the
        lock is held: a step on the case that committed meanwhile (closing this task, say) is
        seen. On PostgreSQL both statements go in one round trip (the lock, then the read)."""
        reads = Batch()
        reads.add(_P_CASE_OF_TASK if self.db.is_sqlite else _P_CASE_OF_TASK_LOCKED, {"b_task_id": task_id})
        reads.add(_P_TASK, {"b_id": task_id})
        case_row, task_row = (r.first() for r in reads.run(s.connection()))
        if task_row is None or case_row is None:
            raise NotFound(f"任务 {task_id} 不存在")
        return TaskRow(*task_row), CaseRow(*case_row)

    def _task_for_update(self, s: Session, task_id: int) -> HumanTask:
        q = select(HumanTask).where(HumanTask.id == task_id)
        if not self.db.is_sqlite:
            q = q.with_for_update()
        ht = s.scalars(q).first()
        if ht is None:
            raise NotFound(f"任务 {task_id} 不存在")
        if ht.state != "open":
            raise TaskNotReady(f"任务「{ht.name or ht.bpmn_id}」已办结或取消")
        return ht

    @staticmethod
    def _check_task_role(ht: HumanTask | TaskRow, actor: Actor) -> None:
        if not actor.has(ht.role):
            raise NotPermitted(_not_your_role(ht.name or ht.bpmn_id, ht.role, actor))

    def _open_incident(self, s: Session, incident_id: int) -> Incident:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise NotFound(f"事件 {incident_id} 不存在")
        if inc.status != "open":
            raise Conflict(f"事件 {incident_id} 已由 {inc.resolved_by} 处理")
        return inc

    def _audit(self, s: Session, case_id: int, actor: str, kind: str, ht: HumanTask | None, **detail: Any) -> None:
        s.add(CaseEvent(case_id=case_id, at=self.clock.now(), actor=actor, kind=kind,
                        task_guid=ht.task_guid if ht else None, bpmn_id=ht.bpmn_id if ht else None,
                        detail={k: v for k, v in detail.items() if v is not None}))

    @staticmethod
    def _require_manager(actor: Actor, what: str) -> None:
        if not actor.manages:
            raise NotPermitted(f"{what}需要主管或系统管理员岗位，{actor.name} 没有")

    @staticmethod
    def _require_reason(reason: str | None, what: str = "原因") -> None:
        if not reason or not reason.strip():
            raise InvalidInput(f"请填写{what}")

    @staticmethod
    def _ref(case: Case) -> CaseRef:
        return CaseRef(case.id, case.case_number, case.status, case.lock_version)

    def _ensure_calendar(self) -> None:
        """Load the working-day override table once per process (admins change it rarely)."""
        if self._calendar_loaded:
            return
        with self.db.read() as s:
            rows = s.execute(select(WorkdayOverride.day, WorkdayOverride.is_workday)).all()
        if rows:
            calendar.set_overrides({day: flag for day, flag in rows})
        self._calendar_loaded = True


# ---------------------------------------------------------------------------- helpers

# Statements of the hot path, built once: building them per call costs more than running them.
_CASE_FOR_STEP = (select(Case).where(Case.id == bindparam("case_id")).options(defer(Case.state))
                  .execution_options(populate_existing=True))
_CASE_FOR_STEP_LOCKED = _CASE_FOR_STEP.with_for_update()
_ht = HumanTask.__table__.c
_CLOSE_TASK = update(HumanTask.__table__).where(_ht.task_guid == bindparam("b_guid")).values(
    state=bindparam("b_state"), closed_at=bindparam("b_at"), closed_by=bindparam("b_by"))
_LATEST_VERSION = (select(ProcessVersion.id).where(ProcessVersion.process_id == bindparam("pid"))
                   .order_by(ProcessVersion.version.desc()).limit(1))
_c = Case.__table__.c
_SAVE_CASE = update(Case.__table__).where(_c.id == bindparam("b_id"), _c.lock_version == bindparam("b_old")).values(
    state=bindparam("b_state"), lock_version=bindparam("b_version"), updated_at=bindparam("b_at"),
    status=bindparam("b_status"), ended_at=bindparam("b_ended"), open_incidents=bindparam("b_incidents"),
    buffered_messages=bindparam("b_buffered"), status_reason=bindparam("b_reason"))


# The steps' statements, run as Prepared (compiled once per dialect, executed on the DBAPI cursor):
_CASE_ROW_COLUMNS = [_c[f.name] for f in fields(CaseRow) if f.name != "updated_at"]
_P_CASE = Prepared(select(*_CASE_ROW_COLUMNS).where(_c.id == bindparam("b_id")))
_P_CASE_LOCKED = Prepared(select(*_CASE_ROW_COLUMNS).where(_c.id == bindparam("b_id")).with_for_update())
_P_CASE_OF_TASK = Prepared(select(*_CASE_ROW_COLUMNS).where(
    _c.id == select(_ht.case_id).where(_ht.id == bindparam("b_task_id")).scalar_subquery()))
_P_CASE_OF_TASK_LOCKED = Prepared(select(*_CASE_ROW_COLUMNS).where(
    _c.id == select(_ht.case_id).where(_ht.id == bindparam("b_task_id")).scalar_subquery()).with_for_update())
_P_CASE_STATE = Prepared(select(_c.state).where(_c.id == bindparam("b_id")))
_P_TASK = Prepared(select(*(_ht[f.name] for f in fields(TaskRow))).where(_ht.id == bindparam("b_id")))
_P_CLAIM_TASK = Prepared(update(HumanTask.__table__).where(
    _ht.id == bindparam("b_id"), _ht.state == "open", _ht.assignee.is_(None)).values(
    assignee=bindparam("b_assignee"), claimed_at=bindparam("b_at")))
_P_LATEST_VERSION = Prepared(_LATEST_VERSION)
_P_NEXT_COUNTER = Prepared(lambda dialect: (pg_insert if dialect == "postgresql" else sqlite_insert)(Counter.__table__)
                           .values(name=bindparam("b_name"), value=1)
                           .on_conflict_do_update(index_elements=[Counter.__table__.c.name],
                                                  set_={"value": Counter.__table__.c.value + 1})
                           .returning(Counter.__table__.c.value))
_P_INSERT_CASE = Prepared(insert(Case.__table__).values(
    case_number=bindparam("b_number"), process_id=bindparam("b_process"), process_version_id=bindparam("b_version"),
    status=bindparam("b_status"), open_incidents=0, buffered_messages=0, lock_version=0, started_by=bindparam("b_by"),
    started_at=bindparam("b_at"), updated_at=bindparam("b_at"), summary=bindparam("b_summary"), state=b"",
).returning(_c.id))
_P_SAVE_CASE = Prepared(_SAVE_CASE)
_P_SAVE_NEW_CASE = Prepared(update(Case.__table__).where(_c.id == bindparam("b_id")).values(
    state=bindparam("b_state"), updated_at=bindparam("b_at"), status=bindparam("b_status"),
    ended_at=bindparam("b_ended"), open_incidents=bindparam("b_incidents"), buffered_messages=bindparam("b_buffered"),
    status_reason=bindparam("b_reason")))
_P_BUFFERED = Prepared(update(Case.__table__).where(_c.id == bindparam("b_id")).values(
    buffered_messages=bindparam("b_buffered")))
_P_SUMMARY = Prepared(update(Case.__table__).where(_c.id == bindparam("b_id")).values(summary=bindparam("b_summary")))
_P_INSERT_SEARCH_KEY = Prepared(insert(CaseSearchKey.__table__).values(
    case_id=bindparam("b_case_id"), key=bindparam("b_key")).inline())
_P_CLOSE_TASK = Prepared(_CLOSE_TASK)
_HT_INSERTED = ("case_id", "task_guid", "bpmn_id", "name", "lane", "role", "form", "state", "created_at")
_P_INSERT_TASK = Prepared(insert(HumanTask.__table__).values({n: bindparam(f"b_{n}") for n in _HT_INSERTED}).inline())
_EVENT_INSERTED = ("case_id", "at", "actor", "kind", "task_guid", "bpmn_id", "detail")
_P_INSERT_EVENT = Prepared(insert(CaseEvent.__table__).values({n: bindparam(f"b_{n}") for n in _EVENT_INSERTED})
                           .inline())
_tj = TimerJob.__table__.c
_P_DELETE_JOB = Prepared(delete(TimerJob.__table__).where(
    _tj.case_id == bindparam("b_case_id"), _tj.task_guid == bindparam("b_guid"), _tj.kind == bindparam("b_kind")))
_P_INSERT_JOB = Prepared(insert(TimerJob.__table__).values(
    case_id=bindparam("b_case_id"), task_guid=bindparam("b_task_guid"), bpmn_id=bindparam("b_bpmn_id"),
    kind=bindparam("b_kind"), due_at=bindparam("b_due_at"), attempts=0).inline())
_P_INSERT_OUTBOX = Prepared(insert(Outbox.__table__).values(
    case_id=bindparam("b_case_id"), topic=bindparam("b_topic"), payload=bindparam("b_payload"),
    idempotency_key=bindparam("b_key"), created_at=bindparam("b_at"), due_at=bindparam("b_at"), attempts=0,
    status="pending").inline())
_im = InboundMessage.__table__.c
_P_MESSAGE_BY_KEY = Prepared(select(_im.id, _im.case_id, _im.name, _im.delivered_at)
                             .where(_im.idempotency_key == bindparam("b_key")))
_P_INSERT_MESSAGE = Prepared(insert(InboundMessage.__table__).values(
    case_id=bindparam("b_case_id"), name=bindparam("b_name"), payload=bindparam("b_payload"),
    received_at=bindparam("b_at"), received_from=bindparam("b_from"), idempotency_key=bindparam("b_key"),
).returning(_im.id))
_P_PENDING_MESSAGES = Prepared(select(_im.id, _im.name, _im.payload).where(
    _im.case_id == bindparam("b_case_id"), _im.delivered_at.is_(None)).order_by(_im.id))
_P_MESSAGE_DELIVERED = Prepared(update(InboundMessage.__table__).where(_im.id == bindparam("b_id")).values(
    delivered_at=bindparam("b_at")))
_CASE_TASK_COLUMNS = ("id", "case_id", "task_guid", "bpmn_id", "name", "role", "assignee", "form", "state",
                      "created_at", "closed_at", "closed_by")
_CASE_TASKS_SELECT = (select(*(_ht[n] for n in _CASE_TASK_COLUMNS), _c.case_number, _c.process_id,
                             _c.open_incidents, _c.summary)
                      .join_from(HumanTask.__table__, Case.__table__, _c.id == _ht.case_id))
_CASE_TASKS_QUERY = _CASE_TASKS_SELECT.where(_ht.case_id == bindparam("b_case_id")).order_by(_ht.id)
_P_CASE_TASKS = Prepared(_CASE_TASKS_QUERY)
_P_CASE_TASKS_OPEN = Prepared(_CASE_TASKS_QUERY.where(_ht.state == "open"))
_P_CASE_VERSION = Prepared(select(_c.lock_version).where(_c.id == bindparam("b_id")))
_P_TASK_BY_ID = Prepared(_CASE_TASKS_SELECT.where(_ht.id == bindparam("b_id")))


def _task_list_source(role: int | None, want: int) -> Any:
    """One source of a task list — the caller's claimed tasks (`role` None) or the unclaimed tasks
    of the role bound as `b_role<role>` — as (id, created_at) in created order, at most `want`: a
    walk along one index. 'open' is written into the SQL, not bound: PostgreSQL's generic plan
    for a prepared statement can use the partial index of unclaimed open tasks only then."""
    q = select(_ht.id, _ht.created_at).where(_ht.state == literal_column("'open'"))
    if role is None:
        q = q.where(_ht.assignee == bindparam("b_assignee"))
    else:
        q = q.where(_ht.role == bindparam(f"b_role{role}"), _ht.assignee.is_(None))
    inner = q.order_by(_ht.created_at, _ht.id).limit(_literal_limit(want)).subquery()
    # selected from as a subquery: SQLite takes no parenthesised, ordered members in a UNION
    return select(inner.c.id, inner.c.created_at)


def _literal_limit(want: int) -> Any:
    """A LIMIT written into the SQL. Bound, it leaves PostgreSQL's generic plan guessing how many
    rows are wanted; that plan then looks worse than the custom ones and the statement is planned
    anew on every run (3 ms of planning against 1.6 ms of execution for a supervisor's list at
    10^6 cases). Written in, each page size is its own prepared statement with a generic plan."""
    return literal_column(str(int(want)))


@functools.lru_cache(maxsize=64)
def _task_list_statement(roles: int, want: int) -> Prepared:
    """The tasks of a list: the caller's claimed ones and those of `roles` roles (b_role0 …),
    merged in created order, the first `want`, with their cases."""
    sources = [_task_list_source(None, want)] + [_task_list_source(i, want) for i in range(roles)]
    merged = union_all(*sources).subquery() if len(sources) > 1 else sources[0].subquery()
    first = select(merged.c.id, merged.c.created_at).order_by(merged.c.created_at, merged.c.id).limit(
        _literal_limit(want)).subquery()
    return Prepared(_CASE_TASKS_SELECT.join(first, first.c.id == _ht.id).order_by(first.c.created_at, first.c.id))


@functools.lru_cache(maxsize=64)
def _task_search_statement(roles: int, want: int) -> Prepared:
    """A task list narrowed by a search (`b_key`, a LIKE prefix of case_search_key): the cases
    found come first — few for what clerks type — and their open tasks that are the caller's or
    unclaimed in one of `roles` roles (b_role0 …), in created order, the first `want`."""
    visible = _ht.assignee == bindparam("b_assignee")
    if roles:
        visible = or_(visible, _ht.assignee.is_(None) & _ht.role.in_(
            [bindparam(f"b_role{i}") for i in range(roles)]))
    found = select(CaseSearchKey.case_id).where(CaseSearchKey.key.like(bindparam("b_key"), escape="\\"))
    return Prepared(_CASE_TASKS_SELECT.where(_ht.case_id.in_(found), _ht.state == literal_column("'open'"), visible)
                    .order_by(_ht.created_at, _ht.id).limit(_literal_limit(want)))


# A task list's counts stop at COUNT_CAP (the page shows "1000+"): counting a post's 11,000
# unclaimed tasks walked 11,000 index entries (0.8 ms per post, on every page view at 10^6 cases),
# and past a thousand the exact number tells a clerk nothing more.
COUNT_CAP = 1000


def _capped_count(*where: Any) -> Prepared:
    found = select(_ht.id).where(_ht.state == literal_column("'open'"), *where).limit(
        literal_column(str(COUNT_CAP))).subquery()
    return Prepared(select(func.count()).select_from(found))


_P_UNCLAIMED_COUNT = _capped_count(_ht.assignee.is_(None), _ht.role == bindparam("b_role"))
_P_MINE_COUNT = _capped_count(_ht.assignee == bindparam("b_assignee"))
_P_PROCESS_NAMES = Prepared(select(ProcessVersion.__table__.c.process_id, ProcessVersion.__table__.c.name)
                            .order_by(ProcessVersion.__table__.c.version))


# Work to do once a session's transaction has committed (the hot cache), kept in `session.info`:
# one listener for every session instead of one registered per step (registering costs more).
_AFTER_COMMIT = "onewindow_after_commit"


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint: its work is gone
        session.info.pop(_AFTER_COMMIT, None)


def _case_counter(now: datetime) -> str:
    return f"case:{now.astimezone(SHANGHAI).year}"


def _case_number(now: datetime, value: int) -> str:
    return f"{now.astimezone(SHANGHAI).year}-{value:06d}"


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(f"data must be an object of field names and values, not {type(data).__name__}")
    try:
        encoded = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"data must be JSON: {err}") from None
    if len(encoded.encode()) > MAX_DATA_BYTES:
        raise InvalidInput(f"data is {len(encoded.encode())} bytes; the limit is {MAX_DATA_BYTES}")
    bad = [k for k in data if not isinstance(k, str) or not k.isidentifier() or k.startswith("_")]
    if bad:
        raise InvalidInput(f"field names must be identifiers not starting with '_': {', '.join(map(str, bad))}")
    return json.loads(encoded)


def _key_prefix(text: str) -> str:
    """The LIKE pattern (escape character \\) of case search keys beginning with what was typed."""
    return f"{_escape_like(case_summary.normalize_key(text))}%"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _status_label(status: str) -> str:
    return {"active": "办理中", "suspended": "已挂起", "completed": "办结", "cancelled": "撤销"}.get(status, status)


def _data_of(wf: BpmnWorkflow) -> dict[str, Any]:
    """A workflow's data as its latest finished or waiting task sees it."""
    if wf.is_completed():
        return dict(wf.data)
    data: dict[str, Any] = {}
    reached = TaskState.COMPLETED | TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
    for task in sorted(wf.get_tasks(state=reached), key=lambda t: t.last_state_change):
        data.update(task.data)
    return data


def _claimed_already(task: dict[str, Any], label: str, actor: Actor) -> bool:
    """Whether the actor holds the open task already; TaskNotReady if it is closed, Conflict
    naming the holder if someone else holds it; False if it is free to claim."""
    if task["state"] != "open":
        raise TaskNotReady(f"任务「{label}」已办结或取消")
    if task["assignee"] and task["assignee"] != actor.name:
        raise Conflict(f"任务「{label}」已由 {task['assignee']} 认领")
    return task["assignee"] == actor.name


def _not_your_role(label: str, role: str | None, actor: Actor) -> str:
    return f"任务「{label}」属于「{ROLES.get(role or '', role)}」岗位，{actor.name} 没有该岗位"


def _names(rows: Iterable[Sequence[Any]]) -> dict[str, str]:
    """process id -> name, from (process_id, name) rows in version order: the latest wins."""
    return {pid: name or pid for pid, name in rows}


def _case_task(r: Sequence[Any]) -> dict[str, Any]:
    """A task dict from a row of _CASE_TASKS_SELECT's columns."""
    return {
        "id": r[0], "case_id": r[1], "case_number": r[12], "process_id": r[13], "task_guid": r[2], "bpmn_id": r[3],
        "name": r[4], "role": r[5], "assignee": r[6], "form": r[7], "state": r[8], "created_at": r[9],
        "closed_at": r[10], "closed_by": r[11], "case_open_incidents": r[14], "summary": r[15] or {},
    }
