"""One engine step: load a case, let SpiffWorkflow run, collect what must be written.

A step runs inside one database transaction (see runtime.Engine). Everything it produces — audit
events, incidents, outbox messages, human-task and timer-job changes, the new instance state —
is collected here and written together, so either all of it lands or none.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition, MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine import sandbox
from engine.spiff import AppServiceTask
from handlers.registry import BusinessError, TransientError

if TYPE_CHECKING:
    from engine.runtime import Engine, VersionInfo
    from storage.models import Case


@dataclass
class HandlerCall:
    """The HandlerContext a service handler receives."""

    step: Step
    task_guid: str
    bpmn_id: str
    operator: str
    attempt: int
    outbox_count: int = 0
    savepoint: Any = None  # begun when the handler first asks for the session (StepScriptEngine._call)

    @property
    def case_id(self) -> int:
        return self.step.case.id

    @property
    def session(self) -> Any:
        session = self.step.session
        if session is not None and self.savepoint is None:
            self.savepoint = session.begin_nested()
        return session

    @property
    def services(self) -> Any:
        return self.step.engine.services

    @property
    def case_number(self) -> str:
        return self.step.case.case_number

    @property
    def idempotency_key(self) -> str:
        return f"{self.step.case.id}:{self.task_guid}:{self.operator}"

    def now(self) -> datetime:
        return self.step.now

    def outbox(self, topic: str, payload: dict[str, Any], key: str | None = None) -> None:
        self.outbox_count += 1
        self.step.outbox.append({
            "topic": topic,
            "payload": dict(payload),
            "idempotency_key": key or f"{self.idempotency_key}:{topic}:{self.outbox_count}",
        })


@dataclass
class Step:
    """What one transaction on one case collects."""

    engine: Engine
    case: Case
    actor: str
    now: datetime
    version: VersionInfo
    session: Any = None  # the step's SQLAlchemy session
    events: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)  # ids of the buffered messages handed over
    timed_out: bool = False

    def event(self, kind: str, task: Any = None, **detail: Any) -> None:
        self.events.append(_event(kind, task, detail))

    def incident(self, kind: str, message: str, task: Any = None, details: str | None = None) -> None:
        self.incidents.append({
            "kind": kind,
            "message": message,
            "task_guid": str(task.id) if task is not None else None,
            "bpmn_id": task.task_spec.bpmn_id if task is not None else None,
            "details": details,
        })
        self.event("incident_opened", task, incident_kind=kind, message=message)


def _event(kind: str, task: Any, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "task_guid": str(task.id) if task is not None else None,
        "bpmn_id": task.task_spec.bpmn_id if task is not None else None,
        "detail": detail,
    }


class StepScriptEngine(PythonScriptEngine):
    """The script engine of one step: sandboxed scripts, and service calls through the registry."""

    def __init__(self, step: Step, environment: sandbox.SandboxEnvironment) -> None:
        super().__init__(environment=environment)
        self.step = step

    def call_service(self, task: Any, **kwargs: Any) -> Any:  # pragma: no cover — never reached
        raise WorkflowException("service tasks are run by run_service_task")

    def run_service_task(self, spec: AppServiceTask, task: Any) -> bool | None:
        """True: done. None: left STARTED, waiting for a retry or for an admin (incident)."""
        step = self.step
        engine = step.engine
        sandbox.check_deadline()
        op = engine.registry.get(spec.operation_name)
        if op is None:
            return self._park(task, "service_fault", f"service operator '{spec.operation_name}' is not registered")
        args = {name: self.evaluate(task, p["value"]) for name, p in spec.operation_params.items()}
        problems = op.check_call(args)
        if problems:
            return self._park(task, "script_error", f"{op.name}: " + "; ".join(problems))
        attempt = int(task.internal_data.get("attempts", 0)) + 1
        call = HandlerCall(step, str(task.id), spec.bpmn_id, op.name, attempt)
        queued = len(step.outbox)
        try:
            result = self._call(op, call, args)
        except BusinessError as err:  # an answer: what the handler queued about it stands
            return self._business_error(task, op.name, err)
        except TransientError as err:
            # A failed call's messages are not sent: the next attempt queues them again, with the
            # same keys (so keeping these would also make that attempt's insert fail).
            del step.outbox[queued:]
            return self._transient(spec, task, op.name, attempt, err)
        except sandbox.StepTimeLimitExceeded:
            del step.outbox[queued:]
            raise
        except Exception as err:  # noqa: BLE001 — a handler defect is an incident, never a crash
            del step.outbox[queued:]
            task.internal_data["attempts"] = attempt
            return self._park(task, "service_fault", f"{op.name} failed: {type(err).__name__}: {err}",
                              details=traceback.format_exc())
        try:
            result = json.loads(json.dumps(result, ensure_ascii=False, default=_json_default))
        except (TypeError, ValueError) as err:
            del step.outbox[queued:]
            return self._park(task, "service_fault", f"{op.name} returned a result that is not JSON: {err}")
        for key in ("attempts", "retry_at", "last_error", "incident"):
            task.internal_data.pop(key, None)
        task.data[spec.result_variable] = result
        step.event("service_called", task, operator=op.name, attempt=attempt)
        return True

    def _call(self, op: Any, call: HandlerCall, args: dict[str, Any]) -> Any:
        """Run a handler inside a savepoint: if it fails, what it wrote to the database is undone
        (a register entry half made must not be committed with the step).

        The savepoint is begun when the handler first touches `ctx.session` — the only way a
        handler writes to the step's transaction — so handlers that never do (most department
        calls, and every stub) cost no SAVEPOINT / RELEASE round trips."""
        try:
            result = op(call, args)
        except BaseException:
            if call.savepoint is not None and call.savepoint.is_active:
                call.savepoint.rollback()
            raise
        if call.savepoint is not None and call.savepoint.is_active:
            call.savepoint.commit()
        return result

    def _business_error(self, task: Any, operator: str, err: BusinessError) -> bool | None:
        payload = {"code": err.code, "message": err.message, **err.detail}
        event = BpmnEvent(ErrorEventDefinition(err.code, code=err.code), payload=payload, target=task.workflow)
        workflow = task.workflow
        while workflow is not None:
            if workflow.get_tasks(catches_event=event, state=TaskState.NOT_FINISHED_MASK):
                self.step.event("business_error", task, operator=operator, code=err.code, message=err.message)
                task.workflow.top_workflow.catch(event)
                return True
            workflow = workflow.parent_workflow
        return self._park(task, "business_error",
                          f"{operator} refused ({err.code}: {err.message}) and the diagram has no boundary "
                          f"event catching error code '{err.code}'")

    def _transient(self, spec: AppServiceTask, task: Any, operator: str, attempt: int,
                   err: TransientError) -> bool | None:
        settings = self.step.engine.settings
        retries = spec.retries if spec.retries is not None else settings.default_retries
        task.internal_data["attempts"] = attempt
        task.internal_data["last_error"] = str(err)
        if attempt <= retries:
            base = spec.retry_backoff_base or settings.retry_backoff_base
            delay = min(settings.retry_delay * base ** (attempt - 1), settings.retry_max_delay)
            retry_at = self.step.now + timedelta(seconds=delay)
            task.internal_data["retry_at"] = retry_at.isoformat()
            self.step.event("service_retry_scheduled", task, operator=operator, attempt=attempt,
                            error=str(err), retry_at=retry_at.isoformat())
            return None
        return self._park(task, "service_fault",
                          f"{operator} failed {attempt} time(s), last: {err}")

    def _park(self, task: Any, kind: str, message: str, details: str | None = None) -> None:
        task.internal_data.pop("retry_at", None)
        task.internal_data["incident"] = True
        self.step.incident(kind, message, task, details)


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, ensure_ascii=False, default=_json_default))
    except (TypeError, ValueError):
        return repr(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------- running the engine

def advance(step: Step, workflow: BpmnWorkflow, deliver: Any) -> None:
    """Run engine tasks until every branch waits; errors become incidents, never exceptions.

    `deliver(workflow) -> bool` hands over buffered messages the case now waits for.

    SpiffWorkflow fires every overdue timer whenever it runs (`do_engine_steps` ends with
    `refresh_timers`), not only when the scheduler's job does: on resume, or when a clerk or a
    message moves the case after the scheduler fell behind. Those firings are recorded here too,
    ahead of what the step did after them, so the history never misses a timer.
    """
    timers = waiting_timers(workflow) if step.version.has_timers else []
    mark = len(step.events)
    _advance(step, workflow, deliver)
    step.events[mark:mark] = timer_fired_events(workflow, timers)
    for thrown in workflow.get_events():
        # thrown and caught by nothing inside the case: an uncaught error or escalation, or a
        # message for the outside; kept in the history so it is never silently lost
        definition = thrown.event_definition
        step.event("event_thrown", None, type=type(definition).__name__, name=getattr(definition, "name", None),
                   code=getattr(definition, "code", None), payload=_jsonable(thrown.payload))


_FIRED = TaskState.READY | TaskState.STARTED | TaskState.COMPLETED | TaskState.ERROR


def timer_fired_events(workflow: BpmnWorkflow, timers: list[tuple[Any, str | None]]) -> list[dict[str, Any]]:
    """`timer_fired` events for the timers (from `waiting_timers`) that have fired since."""
    return [_event("timer_fired", task, {"due": due}) for task, due in timers
            if timer_fired(task, due) and workflow.get_task_from_id(task.id) is task]


def timer_fired(task: Any, due_before: str | None) -> bool:
    """Did this timer fire? A cycle timer stays waiting when it fires; its next due time moves on.

    A timer without a due time had nothing left to fire: a cycle timer whose repetitions are used
    up completes without firing again.
    """
    if due_before is None:
        return False
    if isinstance(getattr(task.task_spec, "event_definition", None), MultipleEventDefinition):
        # an event-based gateway also moves on when one of its messages arrives: the timer fired
        # only if it is among the events the gateway has seen
        return any(isinstance(getattr(seen, "event_definition", None), TimerEventDefinition)
                   for seen in task.internal_data.get("seen_events", []))
    if task.has_state(_FIRED):
        return True
    if task.state == TaskState.WAITING and due_before is not None:
        return timer_due(task) != due_before
    return False


def timer_due(task: Any) -> str | None:
    """When a waiting task's timer is due, as SpiffWorkflow holds it (ISO text), or None.

    A timer catch event (intermediate, boundary, start) carries a TimerEventDefinition. An
    event-based gateway waits with a MultipleEventDefinition of its targets' events (a timer and
    messages, say): its timer's due time is kept on the gateway task, so the gateway is what the
    scheduler must wake.
    """
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        definition = next((d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)), None)
    if not isinstance(definition, TimerEventDefinition):
        return None
    value = definition.details(task).value
    return value if isinstance(value, str) else None


def _has_timer(task: Any) -> bool:
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return isinstance(definition, TimerEventDefinition)


def waiting_timers(workflow: BpmnWorkflow) -> list[tuple[Any, str | None]]:
    """Every waiting timer task, with its due time as SpiffWorkflow holds it (ISO text)."""
    return [(task, timer_due(task)) for task in workflow.get_tasks(state=TaskState.WAITING) if _has_timer(task)]


def _advance(step: Step, workflow: BpmnWorkflow, deliver: Any) -> None:
    errored: set[UUID] = set()
    for _ in range(200):
        try:
            workflow.do_engine_steps()
        except SpiffWorkflowException as err:
            task = getattr(err, "task", None)
            cause = _root_cause(err)
            if isinstance(cause, sandbox.StepTimeLimitExceeded):
                step.timed_out = True
                step.incident("timeout", str(cause), task)
                return
            if task is None or task.id in errored:
                step.incident("engine_error", _describe(err), task, traceback.format_exc())
                return
            errored.add(task.id)
            step.incident("script_error", _describe(err), task, traceback.format_exc())
            continue
        except sandbox.StepTimeLimitExceeded as err:
            step.timed_out = True
            step.incident("timeout", str(err), None)
            return
        except Exception as err:  # noqa: BLE001 — keep the case, show the defect
            step.incident("engine_error", f"{type(err).__name__}: {err}", None, traceback.format_exc())
            return
        if any(not t.task_spec.manual for t in workflow.get_tasks_iterator(state=TaskState.READY)):
            continue
        if deliver(workflow):
            continue
        return
    step.incident("engine_error", "the engine kept finding work after 200 rounds (a loop without a wait?)")


def _root_cause(err: BaseException) -> BaseException:
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sandbox.StepTimeLimitExceeded):
            return current
        inner = getattr(current, "exception", None) or current.__cause__ or current.__context__
        current = inner
    return err


def _describe(err: SpiffWorkflowException) -> str:
    text = str(err)
    notes = getattr(err, "notes", None) or getattr(err, "__notes__", None) or []
    inner = getattr(err, "exception", None) or err.__cause__ or err.__context__
    parts = [text]
    if inner is not None:
        detail = str(inner)
        if isinstance(inner, MemoryError) and not detail:  # the process's memory limit (RLIMIT_AS)
            parts.append("MemoryError: 内存不足（超出进程的内存上限）")
        elif not detail:
            parts.append(type(inner).__name__)
        elif detail not in text:
            parts.append(f"{type(inner).__name__}: {detail}")
    parts.extend(n for n in notes if n not in text)
    return " — ".join(parts)


def ready_human_tasks(workflow: BpmnWorkflow) -> dict[str, Any]:
    return {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}


def open_work(workflow: BpmnWorkflow) -> tuple[dict[str, Any], dict[tuple[str, str], tuple[datetime, str]]]:
    """`ready_human_tasks` and `scheduled_jobs` in one walk of the task tree (a walk costs about as
    much as either filter: SpiffWorkflow's iterator prunes by the lowest state asked for, which is
    the same for READY and for READY|WAITING|STARTED, so both see the same tasks)."""
    ready: dict[str, Any] = {}
    jobs: dict[tuple[str, str], tuple[datetime, str]] = {}
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        state = task.state
        spec = task.task_spec
        if state == TaskState.READY:
            if spec.manual:
                ready[str(task.id)] = task
        elif state == TaskState.STARTED:
            retry_at = task.internal_data.get("retry_at")
            if retry_at:
                jobs[(str(task.id), "retry")] = (datetime.fromisoformat(retry_at), spec.bpmn_id)
        else:
            value = timer_due(task)
            if value is not None:
                jobs[(str(task.id), "timer")] = (TimerEventDefinition.get_datetime(value), spec.bpmn_id)
    return ready, jobs


def scheduled_jobs(workflow: BpmnWorkflow) -> dict[tuple[str, str], tuple[datetime, str]]:
    """(task guid, kind) -> (due, bpmn id) for every waiting timer and pending service retry."""
    jobs: dict[tuple[str, str], tuple[datetime, str]] = {}
    for task in workflow.get_tasks(state=TaskState.WAITING | TaskState.STARTED):
        spec = task.task_spec
        if task.state == TaskState.STARTED:
            retry_at = task.internal_data.get("retry_at")
            if retry_at:
                jobs[(str(task.id), "retry")] = (datetime.fromisoformat(retry_at), spec.bpmn_id)
            continue
        value = timer_due(task)
        if value is not None:
            jobs[(str(task.id), "timer")] = (TimerEventDefinition.get_datetime(value), spec.bpmn_id)
    return jobs



def message_event(name: str, payload: dict[str, Any]) -> BpmnEvent:
    return BpmnEvent(MessageEventDefinition(name), payload=payload)
