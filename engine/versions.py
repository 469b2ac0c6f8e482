"""Versions side by side: what changed between two versions of a process, moving running cases
to a newer version, and the steps of a version in order (for the public guide).

Diff (`diff_versions`): SpiffWorkflow's `SpecDiff` on the two versions' parsed specs (the cached
ones the engine runs), for the process and for every sub-process spec it carries (call
activities' callees, embedded and event sub-processes), plus what the bytes of a version hold
besides the diagram: its forms and the versions of the processes it calls. Elements are aligned
by BPMN id first, then by position (SpiffWorkflow's rule), so a task renamed in place shows as
"changed" with `bpmn_id` among its changed attributes — a replacement.

Migration (`check_migration`, `migrate_case`, `migrate_cases`): `diff_workflow` on the case's
own task tree, then `migrate_workflow`. A move is safe, and done, only when all of these hold;
otherwise it is refused with every reason at once (`MigrationRefused`):
- the target is a newer version of the case's own process, and the case is running (active or
  suspended);
- no task the case has reached (completed, running, ready, waiting, failed or cancelled) lost its
  element in the new version: its state could not even be loaded on the new version;
- no task that has completed or is running (a service call awaiting its retry, a call activity)
  has an element the new version changed — a step inserted after a completed task would never
  run, a changed script of a running call would run half old and half new. This is the rule
  SpiffArena applies; only a new name or documentation (texts people read) is let through;
- every sub-process the case is inside still exists in the new version;
- afterwards, every task of the case points at an element of the new version and the state
  round-trips through the serializer on the new version (a net under the rules above).
Tasks that are ready or waiting are reset on their new elements (SpiffWorkflow re-predicts what
follows them); each keeps its id (so its human-task row), its data, and — when its element is
unchanged — its internal state, so a running timer keeps its due time. The case row's version and
state, the human-task rows and timer jobs, and a `case_migrated` audit event are written in one
transaction (the engine's step machinery), with the case locked and its lock version bumped.

Only admins and process designers migrate cases (`MIGRATORS`).
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.spiff import make_spec_serializer
from engine.steps import ready_human_tasks
from storage.models import Case, HumanTask, ProcessVersion

if TYPE_CHECKING:
    from engine.runtime import Actor, Engine, VersionInfo

MIGRATORS = frozenset({"admin", "designer"})
RUNNING = ("active", "suspended")
# attributes of a completed task's element that may change without making a move unsafe: texts
DESCRIPTIVE = frozenset({"bpmn_name", "documentation"})
ATTRIBUTES = {  # SpiffWorkflow's names of what changed, for people
    "outputs": "后续连线", "inputs": "前序连线", "bpmn_name": "名称", "bpmn_id": "元素 ID", "lane": "泳道",
    "typename": "元素类型", "extensions": "扩展属性", "prescript": "前置脚本", "postscript": "后置脚本",
    "script": "脚本", "operation_name": "服务操作", "operation_params": "服务参数", "cond_task_specs": "分支条件",
    "event_definition": "事件定义", "spec": "调用的流程",
}
_REACHED = TaskState.FINISHED_MASK | TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
_RAN = TaskState.COMPLETED | TaskState.STARTED | TaskState.ERROR
STATE_LABELS = {
    TaskState.COMPLETED: "已完成", TaskState.STARTED: "执行中", TaskState.READY: "待办", TaskState.WAITING: "等待中",
    TaskState.ERROR: "出错", TaskState.CANCELLED: "已取消", TaskState.FUTURE: "未开始", TaskState.LIKELY: "未开始",
    TaskState.MAYBE: "未开始",
}

_registry_lock = threading.Lock()
_registry: Any = None


def _spec_registry() -> Any:
    """The serializer registry SpecDiff compares elements with (built once: it is stateless)."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = make_spec_serializer().registry
    return _registry


class MigrationRefused(Conflict):
    """Moving a case to another version is not safe; `reasons` says why, all at once."""

    def __init__(self, case_number: str, reasons: list[str]) -> None:
        self.case_number = case_number
        self.reasons = list(reasons)
        super().__init__(f"案件 {case_number} 不能迁移：" + "；".join(self.reasons))


# ================================================================================ the diff

@dataclass(frozen=True)
class ElementChange:
    """One element added, removed or changed. `process` is the spec it belongs to: the process
    itself, a called process, or an embedded / event sub-process."""

    process: str
    bpmn_id: str
    name: str | None
    kind: str  # user_task, service_task, exclusive_gateway … (snake_case of the spec class)
    attributes: tuple[str, ...] = ()  # changed: what changed (SpiffWorkflow's attribute names)
    new_bpmn_id: str | None = None  # changed: aligned by position with a differently named element
    new_name: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"process": self.process, "bpmn_id": self.bpmn_id, "name": self.name, "kind": self.kind,
                "attributes": list(self.attributes), "new_bpmn_id": self.new_bpmn_id, "new_name": self.new_name}


@dataclass(frozen=True)
class VersionRef:
    id: int
    process_id: str
    version: int


@dataclass
class VersionDiff:
    old: VersionRef
    new: VersionRef
    added: list[ElementChange] = field(default_factory=list)
    removed: list[ElementChange] = field(default_factory=list)
    changed: list[ElementChange] = field(default_factory=list)
    processes_added: list[str] = field(default_factory=list)  # sub-process specs only in the new version
    processes_removed: list[str] = field(default_factory=list)
    forms_added: list[str] = field(default_factory=list)
    forms_removed: list[str] = field(default_factory=list)
    forms_changed: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # {process, old_version, new_version}

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.processes_added or self.processes_removed
                    or self.forms_added or self.forms_removed or self.forms_changed or self.calls)

    def names(self) -> set[str]:
        """Every BPMN id the diff mentions (old and new ids of replacements)."""
        out = {c.bpmn_id for c in (*self.added, *self.removed, *self.changed)}
        return out | {c.new_bpmn_id for c in self.changed if c.new_bpmn_id}

    def to_data(self) -> dict[str, Any]:
        return {
            "old": vars(self.old), "new": vars(self.new),
            "added": [c.to_data() for c in self.added], "removed": [c.to_data() for c in self.removed],
            "changed": [c.to_data() for c in self.changed],
            "processes_added": self.processes_added, "processes_removed": self.processes_removed,
            "forms_added": self.forms_added, "forms_removed": self.forms_removed, "forms_changed": self.forms_changed,
            "calls": self.calls,
        }


class _SpecDiff(SpecDiff):
    """SpecDiff that ignores the links SpiffWorkflow adds at run time.

    When an event sub-process is first triggered, SpiffWorkflow connects its spec to the
    process's start and end specs (`BpmnStartTask.trigger_wf`) — in the shared, cached spec
    objects. Those links say nothing about the diagram, so they are left out of the comparison:
    otherwise a version would look changed once any case of it had, say, turned yellow.
    """

    def _compare_task_specs(self, spec: Any, candidate: Any) -> list[str]:
        first, second = self._registry.convert(spec), self._registry.convert(candidate)
        if first.get("typename") != second.get("typename"):
            return ["typename"]
        _without_trigger_links(spec, first)
        _without_trigger_links(candidate, second)
        return [key for key, value in first.items() if second.get(key) != value]


def _without_trigger_links(spec: Any, dct: dict[str, Any]) -> None:
    wf_spec = spec._wf_spec
    start, end = getattr(wf_spec, "start", None), getattr(wf_spec, "end", None)
    triggers = set(getattr(start, "trigger_specs", None) or ())
    if not triggers:
        return
    if spec is start:
        dct["outputs"] = [n for n in dct.get("outputs", []) if n not in triggers]
    elif spec is end:
        dct["inputs"] = [n for n in dct.get("inputs", []) if n not in triggers]
    elif spec.name in triggers:
        dct["inputs"] = [n for n in dct.get("inputs", []) if start is None or n != start.name]
        dct["outputs"] = [n for n in dct.get("outputs", []) if end is None or n != end.name]


def spec_diff(registry: Any, old: Any, new: Any) -> SpecDiff:
    """SpecDiff (run-time links ignored, see `_SpecDiff`), with every element aligned: SpecDiff
    walks from the start event only, so the elements of event sub-processes (reached by an event,
    not a flow) would be missing from its alignment, and WorkflowDiff fails on a case whose event
    sub-process has started."""
    diff = _SpecDiff(registry, old, new)
    for spec in list(old.task_specs.values()):
        if spec not in diff.alignment:
            diff._align(spec, old, new)
    return diff


def _is_process_start(spec: Any) -> bool:
    return spec is getattr(spec._wf_spec, "start", None)


def _kind(spec: Any) -> str:
    name = type(spec).__name__
    if name.startswith("App"):
        name = name[3:]
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _element(process: str, spec: Any, **extra: Any) -> ElementChange:
    return ElementChange(process, spec.bpmn_id, spec.bpmn_name, _kind(spec), **extra)


def _spec_changes(process: str, diff: SpecDiff) -> tuple[list[ElementChange], list[ElementChange],
                                                         list[ElementChange]]:
    """Added, removed and changed BPMN elements of one SpecDiff. SpiffWorkflow's own helper
    specs (Start, End, joins, boundary-event splits) have no BPMN id and are left out: their
    changes follow from the elements'."""
    added = [_element(process, s) for s in diff.added if s.bpmn_id]
    removed = [_element(process, s) for s in diff.removed if s.bpmn_id]
    changed = []
    for old, attributes in diff.changed.items():
        if not old.bpmn_id:
            continue
        new = diff.alignment.get(old)
        renamed = new is not None and new.bpmn_id != old.bpmn_id
        changed.append(_element(process, old, attributes=tuple(sorted(a for a in attributes if a != "name")),
                                new_bpmn_id=new.bpmn_id if renamed else None,
                                new_name=new.bpmn_name if renamed else None))
    return added, removed, changed


def diff_versions(engine: Engine, old_id: int, new_id: int) -> VersionDiff:
    """What changed from one version of a process to another (either order)."""
    with engine.db.read() as s:
        old, new = _version(s, old_id), _version(s, new_id)
        if old.process_id != new.process_id:
            raise InvalidInput(f"只能比较同一流程的两个版本：{old.process_id} v{old.version} 与 "
                               f"{new.process_id} v{new.version} 属于不同流程")
        old_assets, new_assets = dict(old.assets or {}), dict(new.assets or {})
        old_deps, new_deps = dict(old.dependencies or {}), dict(new.dependencies or {})
        numbers = _version_numbers(s, [*old_deps.values(), *new_deps.values()])
        result = VersionDiff(VersionRef(old.id, old.process_id, old.version),
                             VersionRef(new.id, new.process_id, new.version))
    old_spec, old_subs = engine._spec_bundle(old_id)
    new_spec, new_subs = engine._spec_bundle(new_id)
    registry = _spec_registry()
    parts = [(old.process_id, spec_diff(registry, old_spec, new_spec))]
    result.processes_added = sorted(new_subs.keys() - old_subs.keys())
    result.processes_removed = sorted(old_subs.keys() - new_subs.keys())
    for name in sorted(old_subs.keys() & new_subs.keys()):
        parts.append((name, spec_diff(registry, old_subs[name], new_subs[name])))
    for process, diff in parts:
        added, removed, changed = _spec_changes(process, diff)
        result.added += added
        result.removed += removed
        result.changed += changed
    result.forms_added = sorted(new_assets.keys() - old_assets.keys())
    result.forms_removed = sorted(old_assets.keys() - new_assets.keys())
    result.forms_changed = sorted(k for k in old_assets.keys() & new_assets.keys() if old_assets[k] != new_assets[k])
    for callee in sorted(old_deps.keys() | new_deps.keys()):
        if old_deps.get(callee) != new_deps.get(callee):
            result.calls.append({"process": callee, "old_version": numbers.get(old_deps.get(callee)),
                                 "new_version": numbers.get(new_deps.get(callee))})
    return result


def _version(s: Session, version_id: int) -> ProcessVersion:
    pv = s.get(ProcessVersion, version_id)
    if pv is None:
        raise NotFound(f"流程版本 {version_id} 不存在")
    return pv


def _version_numbers(s: Session, ids: Iterable[Any]) -> dict[int, int]:
    wanted = [int(i) for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(s.execute(select(ProcessVersion.id, ProcessVersion.version)
                          .where(ProcessVersion.id.in_(wanted))).all())


# ================================================================================ migration

@dataclass
class MigrationCheck:
    """Whether a case can move to a version, and what would follow (a dry run)."""

    case_id: int
    case_number: str
    from_version: VersionRef
    to_version: VersionRef
    safe: bool
    reasons: list[str] = field(default_factory=list)
    open_tasks: list[str] = field(default_factory=list)  # human tasks (bpmn ids) open after the move

    def to_data(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "case_number": self.case_number, "from_version": vars(self.from_version),
                "to_version": vars(self.to_version), "safe": self.safe, "reasons": self.reasons,
                "open_tasks": self.open_tasks}


def _label(task: Any) -> str:
    spec = task.task_spec
    name = spec.bpmn_name or spec.bpmn_id or spec.name
    return f"「{name}」（{spec.bpmn_id}）" if spec.bpmn_id and name != spec.bpmn_id else f"「{name}」"


def _state(task: Any) -> str:
    return STATE_LABELS.get(task.state, TaskState.get_name(task.state))


def _refusals(case: Case, current: ProcessVersion, target: ProcessVersion) -> list[str]:
    reasons = []
    if target.process_id != case.process_id:
        reasons.append(f"目标版本属于流程 {target.process_id}，案件属于流程 {case.process_id}")
    elif target.version <= current.version:
        reasons.append(f"目标版本 v{target.version} 不比案件当前的 v{current.version} 新，只能迁移到更新的版本")
    if case.status not in RUNNING:
        label = {"completed": "办结", "cancelled": "撤销"}.get(case.status, case.status)
        reasons.append(f"案件已{label}，只能迁移在办（办理中或挂起）的案件")
    return reasons


def _migrate(engine: Engine, wf: BpmnWorkflow, target_id: int) -> list[str]:
    """Move `wf` onto the target version in place; returns the reasons it is not safe (none: moved).

    With reasons, `wf` is left half-moved and must be thrown away.
    """
    new_spec, new_subs = engine._spec_bundle(target_id)
    registry = _spec_registry()
    reasons: list[str] = []
    # (workflow, its WorkflowDiff, its SpecDiff, its new spec) for the case and each sub-workflow;
    # what diff_workflow does, keeping the SpecDiffs to tell which attributes changed
    top = spec_diff(registry, wf.spec, new_spec)
    pairs = [(wf, WorkflowDiff(wf, top), top, new_spec)]
    for sp in wf.subprocesses.values():
        new_sub = new_subs.get(sp.spec.name)
        if new_sub is None:
            if not sp.is_completed():
                reasons.append(f"子流程「{sp.spec.name}」正在本案件中运行，新版本中已没有它")
            continue
        sub_diff = spec_diff(registry, sp.spec, new_sub)
        pairs.append((sp, WorkflowDiff(sp, sub_diff), sub_diff, new_sub))
    for _workflow, diff, specs, _spec in pairs:
        for task in diff.removed:
            if task.has_state(_REACHED):
                reasons.append(f"{_label(task)}在本案件中{_state(task)}，新版本中已删除")
        for task in diff.changed:
            # the internal start task has run once and for all; what changes on it (a new event
            # sub-process it can trigger, a new start event) only applies from now on
            if not task.has_state(_RAN) or _is_process_start(task.task_spec):
                continue
            changes = set(specs.changed.get(task.task_spec, ())) - {"name"}
            if changes - DESCRIPTIVE:
                what = "、".join(f"{ATTRIBUTES[a]} {a}" if a in ATTRIBUTES else a for a in sorted(changes))
                reasons.append(f"{_state(task)}的{_label(task)}在新版本中有改动（{what}）")
    if reasons:
        return reasons
    # what a reset would lose: the data of ready and waiting tasks, and the internal state (a
    # timer's due time) of those whose element did not change
    kept: dict[Any, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for workflow, diff, _spec_diff, _spec in pairs:
        changed = set(map(id, diff.changed))
        for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING, skip_subprocesses=True):
            internal = copy.deepcopy(task.internal_data) if id(task) not in changed else None
            kept[task.id] = (copy.deepcopy(task.data), internal)
    for workflow, diff, _spec_diff, spec in pairs:
        migrate_workflow(diff, workflow, spec)  # resets ready and waiting tasks: what follows is predicted anew
    wf.subprocess_specs = new_subs
    wf.spec_ref = target_id
    for task_id, (data, internal) in kept.items():
        task = wf.get_task_from_id(task_id)
        if task is None or not task.has_state(TaskState.READY | TaskState.WAITING):
            continue
        task.data = data
        if internal is not None and task.state == TaskState.WAITING:
            task.internal_data = internal
    for workflow, _diff, _spec_diff, spec in pairs:
        for task in workflow.get_tasks(skip_subprocesses=True):
            if spec.task_specs.get(task.task_spec.name) is not task.task_spec:
                reasons.append(f"迁移后{_label(task)}仍指向旧版本的元素")
    if not reasons:
        try:
            engine.serializer.deserialize_json(engine.serializer.serialize_json(wf))
        except Exception as err:  # noqa: BLE001 — whatever fails here, the move is not safe
            reasons.append(f"迁移后的状态无法按新版本载入：{type(err).__name__}: {err}")
    return reasons


def _target(s: Session, case: Case, target_id: int | None) -> ProcessVersion:
    if target_id is None:
        target = s.scalars(select(ProcessVersion).where(ProcessVersion.process_id == case.process_id)
                           .order_by(ProcessVersion.version.desc()).limit(1)).first()
        if target is None:  # pragma: no cover — the case's own version exists
            raise NotFound(f"流程 {case.process_id} 没有已部署的版本")
        return target
    return _version(s, target_id)


def check_migration(engine: Engine, case_id: int, target_id: int | None = None) -> MigrationCheck:
    """Would moving the case to the version (default: its process's latest) be safe? Nothing is written."""
    with engine.db.read() as s:
        case = s.get(Case, case_id)
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在")
        current = _version(s, case.process_version_id)
        target = _target(s, case, target_id)
        check = MigrationCheck(case.id, case.case_number, VersionRef(current.id, current.process_id, current.version),
                               VersionRef(target.id, target.process_id, target.version), safe=False)
        check.reasons = _refusals(case, current, target)
        if check.reasons:
            return check
        wf = engine._deserialize(case)
    check.reasons = _migrate(engine, wf, target.id)
    check.safe = not check.reasons
    if check.safe:
        check.open_tasks = sorted(t.task_spec.bpmn_id for t in ready_human_tasks(wf).values())
    return check


def require_migrator(actor: Actor) -> None:
    if not actor.roles & MIGRATORS:
        raise NotPermitted(f"迁移案件需要系统管理员或流程设计岗位，{actor.name} 没有")


def migrate_case(engine: Engine, case_id: int, target_id: int | None, actor: Actor, comment: str | None = None,
                 expected_version: int | None = None) -> MigrationCheck:
    """Move a running case to a newer version of its process, or refuse (MigrationRefused) with
    every reason. One transaction: the case row (version, state, lock version), its human-task
    rows and timer jobs, and the `case_migrated` audit event."""
    require_migrator(actor)
    with engine.db.write() as s:
        case = engine._lock_case(s, case_id)
        if expected_version is not None and case.lock_version != expected_version:
            raise Conflict(f"案件 {case.case_number} 已被他人更新（版本 {expected_version} → {case.lock_version}），"
                           f"请刷新后重试")
        current = _version(s, case.process_version_id)
        target = _target(s, case, target_id)
        reasons = _refusals(case, current, target)
        if reasons:
            raise MigrationRefused(case.case_number, reasons)
        step, wf, before_ready, before_jobs = engine._open_step(s, case, actor)
        reasons = _migrate(engine, wf, target.id)
        if reasons:
            raise MigrationRefused(case.case_number, reasons)
        info = engine.version_info(target.id)
        step.version = info
        _retag_open_tasks(s, case.id, before_ready, ready_human_tasks(wf), info)
        case.process_version_id = target.id
        s.flush()
        step.event("case_migrated", None, from_version=current.version, to_version=target.version,
                   from_version_id=current.id, to_version_id=target.id, comment=comment or None)
        if case.status == "active":
            engine._run(step, wf, engine._deliverer(s, step))
        engine._save(s, step, wf, before_ready, before_jobs)
        return MigrationCheck(case.id, case.case_number, VersionRef(current.id, current.process_id, current.version),
                              VersionRef(target.id, target.process_id, target.version), safe=True,
                              open_tasks=sorted(t.task_spec.bpmn_id for t in ready_human_tasks(wf).values()))


def _retag_open_tasks(s: Session, case_id: int, before: dict[str, Any], after: dict[str, Any],
                      info: VersionInfo) -> None:
    """Open human tasks that stay open carry the new version's name, lane, role and form; one
    whose element was replaced by another (aligned by position) is a new task: unclaimed."""
    kept = before.keys() & after.keys()
    if not kept:
        return
    rows = s.scalars(select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.task_guid.in_(list(kept)),
                                             HumanTask.state == "open")).all()
    for ht in rows:
        task = after[ht.task_guid]
        spec = task.task_spec
        key = info.key(task)
        if ht.bpmn_id != spec.bpmn_id:
            ht.assignee, ht.claimed_at = None, None
        ht.bpmn_id = spec.bpmn_id
        ht.name = spec.bpmn_name or info.names.get(key)
        ht.lane = spec.lane
        ht.role = info.roles.get(key)
        ht.form = info.forms.get(key)


@dataclass
class BulkMigration:
    migrated: list[MigrationCheck] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # {case_id, case_number, reasons}

    def to_data(self) -> dict[str, Any]:
        return {"migrated": [m.to_data() for m in self.migrated], "refused": self.refused}


def migrate_cases(engine: Engine, from_version_id: int, target_id: int | None, actor: Actor,
                  comment: str | None = None) -> BulkMigration:
    """Every running case of a version, each in its own transaction: the safe ones move, the
    others stay where they are and are listed with their reasons."""
    require_migrator(actor)
    with engine.db.read() as s:
        _version(s, from_version_id)
        cases = s.execute(select(Case.id, Case.case_number).where(
            Case.process_version_id == from_version_id, Case.status.in_(RUNNING)).order_by(Case.id)).all()
    result = BulkMigration()
    for case_id, number in cases:
        try:
            result.migrated.append(migrate_case(engine, case_id, target_id, actor, comment))
        except MigrationRefused as err:
            result.refused.append({"case_id": case_id, "case_number": number, "reasons": err.reasons})
        except (Conflict, NotFound) as err:  # ended or changed meanwhile
            result.refused.append({"case_id": case_id, "case_number": number, "reasons": [str(err)]})
    return result


# ================================================================================ steps in order

@dataclass(frozen=True)
class ProcessStep:
    """A user task or service task of a version, in the order a case meets them."""

    process: str  # the process (or called process) the task belongs to
    bpmn_id: str
    name: str | None
    kind: str  # user | service
    lane: str | None  # the lane's name as drawn
    role: str | None  # the lane's role code
    operator: str | None  # service tasks: e.g. tax.assess
    documentation: str | None
    called_from: str | None = None  # the call activity's BPMN id, for steps of a called process
    main: bool = True  # on the way to the process's farthest end event (see process_steps)


def process_steps(engine: Engine, version_id: int) -> list[ProcessStep]:
    """The user and service tasks a case of this version can meet, in order: by their longest
    distance from the start along the sequence flows (loops cut where they turn back), ties in
    the order they are first found. A call activity stands for the called process's steps; event
    sub-processes (supervision alerts) are not on the way and are left out.

    `main` tells the usual way from the other situations: a step is on the main way when a path
    from the start through it reaches the end event farthest from the start (a registration's
    "done" end lies behind every step, a refusal's or a non-acceptance's is reached earlier). A
    step on a branch that only leads to another end (送达不予登记告知) is not main."""
    spec, subs = engine._spec_bundle(version_id)
    info = engine.version_info(version_id)
    return _steps_of(spec, subs, info, spec.name, None, set())


def _steps_of(spec: Any, subs: dict[str, Any], info: VersionInfo, process: str, called_from: str | None,
              stack: set[str], main: bool = True) -> list[ProcessStep]:
    out: list[ProcessStep] = []
    ordered, on_main_way = _ordered(spec)
    for task_spec in ordered:
        if task_spec.manual and task_spec.bpmn_id:
            kind = "user"
        elif getattr(task_spec, "operation_name", None) and task_spec.bpmn_id:
            kind = "service"
        elif isinstance(getattr(task_spec, "spec", None), str) and task_spec.spec in subs \
                and task_spec.spec not in stack:
            out += _steps_of(subs[task_spec.spec], subs, info, task_spec.spec if _is_call(task_spec) else process,
                             called_from or (task_spec.bpmn_id if _is_call(task_spec) else None),
                             stack | {task_spec.spec}, main and task_spec.name in on_main_way)
            continue
        else:
            continue
        out.append(ProcessStep(
            process=process, bpmn_id=task_spec.bpmn_id, name=task_spec.bpmn_name or task_spec.bpmn_id, kind=kind,
            lane=task_spec.lane, role=info.roles.get((process, task_spec.bpmn_id)),
            operator=getattr(task_spec, "operation_name", None) if kind == "service" else None,
            documentation=task_spec.documentation, called_from=called_from,
            main=main and task_spec.name in on_main_way))
    return out


def _is_call(task_spec: Any) -> bool:
    return type(task_spec).__name__ == "CallActivity"


def _ordered(spec: Any) -> tuple[list[Any], set[str]]:
    """The specs reachable from the start along sequence flows, by longest path from it (back
    edges cut), and the names of those on a way to the farthest end event (all, without one).
    The links SpiffWorkflow adds from the start to event sub-processes once they have been
    triggered (see `_SpecDiff`) are not flows and are not followed."""
    triggers = set(getattr(spec.start, "trigger_specs", None) or ())

    def flows(node: Any) -> list[Any]:
        return [o for o in node.outputs if not (node is spec.start and o.name in triggers)]

    found: list[Any] = []
    index: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    on_path: set[str] = set()
    stack: list[tuple[Any, Any]] = []  # iterative depth-first search: every reachable spec, the loops' back edges

    def enter(node: Any) -> None:
        index[node.name] = len(found)
        found.append(node)
        on_path.add(node.name)
        stack.append((node, iter(flows(node))))

    enter(spec.start)
    while stack:
        node, outputs = stack[-1]
        nxt = next(outputs, None)
        if nxt is None:
            stack.pop()
            on_path.discard(node.name)
        elif nxt.name in on_path:
            back.add((node.name, nxt.name))
        elif nxt.name not in index:
            enter(nxt)
    depth = {spec.start.name: 0}
    indegree = {n.name: 0 for n in found}
    for node in found:
        for out in flows(node):
            if (node.name, out.name) not in back:
                indegree[out.name] += 1
    ready = [spec.start]
    while ready:
        node = ready.pop(0)
        for out in flows(node):
            if (node.name, out.name) in back:
                continue
            depth[out.name] = max(depth.get(out.name, 0), depth[node.name] + 1)
            indegree[out.name] -= 1
            if indegree[out.name] == 0:
                ready.append(out)
    ordered = sorted(found, key=lambda n: (depth.get(n.name, 0), index[n.name]))
    ends = [n for n in found if type(n).__name__ == "EndEvent"]
    if not ends:
        return ordered, {n.name for n in found}
    farthest = max(ends, key=lambda n: (depth.get(n.name, 0), -index[n.name]))
    before: dict[str, list[str]] = {}
    for node in found:
        for out in flows(node):
            if (node.name, out.name) not in back:
                before.setdefault(out.name, []).append(node.name)
    main, pending = {farthest.name}, [farthest.name]
    while pending:
        for name in before.get(pending.pop(), []):
            if name not in main:
                main.add(name)
                pending.append(name)
    return ordered, main
