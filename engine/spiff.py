"""Everything that reaches into SpiffWorkflow 3.2.0 internals lives here.

* `AppParser`: the SpiffArena dialect (serviceTaskOperator, properties, pre/post scripts) with our
  service-task class, whose execution the engine controls (retries, business errors, incidents —
  the stock `call_service` turns every adapter error into a NameError).
* `make_serializer`: instance state without the spec. The spec is stored once per ProcessVersion
  and parsed once per process; every instance refers to it by `spec_ref`.
* The timer module is patched once so timers use the engine's clock (tests move time) and read
  naive dates as Asia/Shanghai, not as whatever zone the server happens to be in.
"""
from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    TaskConverter,
)
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.task import Task

# ---------------------------------------------------------------------------- clock for timers

_clock_now: contextvars.ContextVar[Callable[[], datetime] | None] = contextvars.ContextVar(
    "onewindow_clock", default=None
)
SHANGHAI_OFFSET = timezone(timedelta(hours=8), "Asia/Shanghai")


class _ClockedDatetime(datetime):
    """`datetime` whose now() is the engine clock of the step being run."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        hook = _clock_now.get()
        real = hook() if hook is not None else datetime.now(UTC)
        return real.astimezone(tz) if tz is not None else real.astimezone(SHANGHAI_OFFSET).replace(tzinfo=None)


_timer.datetime = _ClockedDatetime  # type: ignore[misc]
_timer.LOCALTZ = SHANGHAI_OFFSET  # China has no daylight saving: a fixed +08:00 is exact


def using_clock(now: Callable[[], datetime]) -> contextvars.Token[Callable[[], datetime] | None]:
    return _clock_now.set(now)


def reset_clock(token: contextvars.Token[Callable[[], datetime] | None]) -> None:
    _clock_now.reset(token)


# ---------------------------------------------------------------------------- service tasks

class AppServiceTask(ServiceTask):
    """A service task whose call the engine's script engine performs (see runtime.StepRunner)."""

    def _execute(self, task: Any) -> bool | None:
        return task.workflow.script_engine.run_service_task(self, task)


class AppParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, Any]] = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, AppServiceTask),
    }


def has_timers(spec: Any, subprocess_specs: dict[str, Any]) -> bool:
    """Does any task of the process or of its subprocesses and callees wait on a timer (alone or
    among the events of an event-based gateway)?"""
    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            definition = getattr(task_spec, "event_definition", None)
            if isinstance(definition, _timer.TimerEventDefinition):
                return True
            if isinstance(definition, MultipleEventDefinition) and any(
                    isinstance(d, _timer.TimerEventDefinition) for d in definition.event_definitions):
                return True
    return False


# ---------------------------------------------------------------------------- serialization

SpecBundle = tuple[Any, dict[str, Any]]  # (BpmnProcessSpec, {called process id: spec})


class _TaskMappingMixin:
    """`mapping_to_dict` for the `tasks` of a (sub)workflow without the registry's per-value
    dispatch: each Task goes straight to FastTaskConverter.to_dict (the registry would call the
    same function, then add the same `typename`); anything else still goes through the registry."""

    registry: Any

    def mapping_to_dict(self, mapping: dict[Any, Any], **kwargs: Any) -> dict[str, Any]:
        task_to_dict = getattr(self.registry, "onewindow_task_to_dict", None)
        if task_to_dict is None or kwargs:
            return super().mapping_to_dict(mapping, **kwargs)  # type: ignore[misc]
        convert = self.registry.convert
        out = {}
        for key, value in mapping.items():
            if type(value) is Task:
                dct = task_to_dict(value)
                dct["typename"] = "Task"
            else:
                dct = convert(value)
            out[str(key)] = dct
        return out


class FastSubWorkflowConverter(_TaskMappingMixin, BpmnSubWorkflowConverter):
    pass


class SpecRefWorkflowConverter(_TaskMappingMixin, BpmnWorkflowConverter):
    """Writes `spec_ref` instead of the spec; reads the spec back from the engine's cache."""

    resolve: Callable[[int], SpecBundle]

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["spec_ref"] = workflow.spec_ref
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        spec_ref = dct.pop("spec_ref")
        spec, subprocess_specs = self.resolve(spec_ref)
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.spec_ref = spec_ref
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class FastTaskConverter(TaskConverter):
    """SpiffWorkflow 3.2.0's TaskConverter.to_dict, the same dict, computed with fewer lookups.

    Serializing is done once per step but touches every task of the tree (the stock converter
    resolves `task.parent` four times per task and goes through DeepMerge's helpers); this is the
    same computation — the parent's data against the task's, updated keys and deleted keys — in
    one pass. Reading is unchanged (`from_dict` is inherited)."""

    def __init__(self, target_class: Any, registry: Any, typename: str | None = None) -> None:
        super().__init__(target_class, registry, typename)
        if self.typename == "Task":
            registry.onewindow_task_to_dict = self.to_dict

    def to_dict(self, task: Task) -> dict[str, Any]:
        parent_id = task._parent
        parent = task.workflow.tasks.get(parent_id)
        if parent is None:
            data = task.data
            delta: dict[str, Any] = {}
            parent_str = None
        else:
            data = {}
            parent_data = parent.data
            own = task.data
            delta = {
                "updates": {k: v for k, v in own.items() if k not in parent_data or v != parent_data[k]},
                "deletions": [k for k in parent_data if k not in own],
            }
            parent_str = str(parent_id)
        return {
            "id": str(task.id),
            "parent": parent_str,
            "children": [str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task._state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
        }


def make_serializer(resolve: Callable[[int], SpecBundle]) -> BpmnWorkflowSerializer:
    converter = type("BoundSpecRefConverter", (SpecRefWorkflowConverter,), {"resolve": staticmethod(resolve)})
    config = dict(SPIFF_CONFIG)
    config[AppServiceTask] = ServiceTaskConverter
    config[Task] = FastTaskConverter
    config[BpmnSubWorkflow] = FastSubWorkflowConverter
    config[BpmnWorkflow] = converter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


def state_bytes(serializer: BpmnWorkflowSerializer, workflow: BpmnWorkflow) -> bytes:
    """`serializer.serialize_json(workflow)` as compact UTF-8: no spaces after separators and
    Chinese written as itself rather than as \\u escapes — a transfer's state is ~17 % smaller
    (58 KB instead of 70 KB), which every step writes and every cold read parses. Any JSON reader,
    `deserialize_json` included, reads it the same."""
    serializer.registry._encoder_mode = True
    try:
        dct = serializer.to_dict(workflow)
        dct[serializer.VERSION_KEY] = serializer.VERSION
        text = json.dumps(dct, cls=serializer._encoder_cls, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a script can make one): escaped, as JSON allows
            return json.dumps(dct, cls=serializer._encoder_cls, separators=(",", ":")).encode("ascii")
    finally:
        serializer.registry._encoder_mode = False


def make_spec_serializer() -> BpmnWorkflowSerializer:
    """For the spec diff used by case migration: specs serialized whole."""
    config = dict(SPIFF_CONFIG)
    config[AppServiceTask] = ServiceTaskConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
