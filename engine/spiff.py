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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask

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


# ---------------------------------------------------------------------------- serialization

SpecBundle = tuple[Any, dict[str, Any]]  # (BpmnProcessSpec, {called process id: spec})


class SpecRefWorkflowConverter(BpmnWorkflowConverter):
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


def make_serializer(resolve: Callable[[int], SpecBundle]) -> BpmnWorkflowSerializer:
    converter = type("BoundSpecRefConverter", (SpecRefWorkflowConverter,), {"resolve": staticmethod(resolve)})
    config = dict(SPIFF_CONFIG)
    config[AppServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = converter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


def make_spec_serializer() -> BpmnWorkflowSerializer:
    """For the spec diff used by case migration: specs serialized whole."""
    config = dict(SPIFF_CONFIG)
    config[AppServiceTask] = ServiceTaskConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
