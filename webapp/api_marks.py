"""A case's progress as diagram marks: element id → "done" | "active" | "waiting" | "incident",
for `webapp.diagram.render_svg`. Used by GET /api/v1/cases/{id}/diagram.svg (and meant for the
case page too). Flask-free and SpiffWorkflow-free: it reads the audit trail, not the workflow.

What is known for certain (tracked):
- done: what the history names — completed human tasks (`task_completed`), service calls that
  answered (`service_called`, `business_error`), timers that fired (`timer_fired`);
- active: the case's open human tasks;
- waiting: timers and service retries the scheduler holds for the case (`timer_job` rows);
- incident: the case's open incidents.
A stronger mark wins: incident > active > waiting > done (a task done once and open again in a
loop is active).

What is inferred from the diagram, because the history does not record it:
- start events of the process are done once the case started;
- gateways, script tasks, events, sub-process entries and anything else without its own history
  are done when they lie between a done element and a marked one (through such elements only);
- in a completed case, an end event is done when it is the only end a finished branch can reach
  without passing another task (an exclusive choice the history cannot show stays unmarked);
- a parallel join that some done branches reached but others not yet is waiting;
- a sequence flow is done when its source is done and its target marked.
Tasks of called processes (call activities) carry their callee's ids and are only marked where
the same id is in this diagram. An exact picture would need the engine to report each element's
state; this one is right for every path the history determines.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

MARK_ORDER = {"done": 0, "waiting": 1, "active": 2, "incident": 3}
DONE_EVENTS = frozenset({"task_completed", "service_called", "business_error", "timer_fired"})
_EXIT = "\x00exit:"  # the virtual node where a sub-process's inner ends meet its outgoing flows
_NOT_NODES = frozenset({
    "sequenceFlow", "laneSet", "lane", "flowNodeRef", "childLaneSet", "documentation", "extensionElements",
    "ioSpecification", "dataInput", "dataOutput", "inputSet", "outputSet", "dataInputAssociation",
    "dataOutputAssociation", "property", "association", "textAnnotation", "text", "group", "dataObject",
    "dataObjectReference", "dataStoreReference", "conditionExpression", "multiInstanceLoopCharacteristics",
    "standardLoopCharacteristics", "incoming", "outgoing", "script",
})
_TRACED = frozenset({"userTask", "serviceTask"})
_SUBPROCESS = frozenset({"subProcess", "transaction", "adHocSubProcess"})


def _parse(xml: str | bytes) -> etree._Element | None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if isinstance(xml, str) and data.lstrip().startswith(b"<?xml"):
        data = data[data.index(b"?>") + 2:]
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _stronger(marks: dict[str, str], element_id: str, mark: str) -> None:
    if MARK_ORDER[mark] > MARK_ORDER.get(marks.get(element_id, ""), -1):
        marks[element_id] = mark


def tracked_marks(history: Iterable[Mapping[str, Any]], open_task_ids: Iterable[str],
                  waiting_ids: Iterable[str], incident_ids: Iterable[str]) -> dict[str, str]:
    """The marks the records state directly (see the module's docstring)."""
    marks: dict[str, str] = {}
    for event in history:
        if event.get("kind") in DONE_EVENTS and event.get("bpmn_id"):
            _stronger(marks, event["bpmn_id"], "done")
    for ids, mark in ((waiting_ids, "waiting"), (open_task_ids, "active"), (incident_ids, "incident")):
        for element_id in ids:
            if element_id:
                _stronger(marks, element_id, mark)
    return marks


class _Graph:
    """The flow graph of one process: nodes, sequence flows, and implicit edges (host → boundary
    event, sub-process entry → inner start, inner end → sub-process exit)."""

    def __init__(self, process: etree._Element) -> None:
        self.kind: dict[str, str] = {}
        self.flows: list[tuple[str, str, str]] = []  # (flow id, source node, target node)
        self.succ: dict[str, set[str]] = defaultdict(set)
        self.pred: dict[str, set[str]] = defaultdict(set)
        self.top_starts: list[str] = []
        self.subprocesses: dict[str, bool] = {}  # id -> triggered by an event
        self._walk(process, container=None, event_sub=False)

    def _edge(self, a: str, b: str) -> None:
        self.succ[a].add(b)
        self.pred[b].add(a)

    def _walk(self, scope: etree._Element, container: str | None, event_sub: bool) -> None:
        flows = []
        for el in scope:
            name = _local(el)
            if not name or name in _NOT_NODES:
                if name == "sequenceFlow":
                    flows.append(el)
                continue
            node = el.get("id")
            if not node:
                continue
            self.kind[node] = name
            if name == "startEvent":
                if container is None:
                    self.top_starts.append(node)
                elif not event_sub:
                    self._edge(container, node)
            elif name == "endEvent" and container is not None:
                self._edge(node, _EXIT + container)
            elif name == "boundaryEvent" and el.get("attachedToRef"):
                self._edge(el.get("attachedToRef"), node)
            if name in _SUBPROCESS:
                triggered = el.get("triggeredByEvent") == "true"
                self.subprocesses[node] = triggered
                self.kind[_EXIT + node] = "exit"
                self._walk(el, container=node, event_sub=triggered)
        for flow in flows:
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if not source or not target:
                continue
            if source in self.subprocesses:
                source = _EXIT + source
            self.flows.append((flow.get("id") or "", source, target))
            self._edge(source, target)

    def region(self, seeds: Iterable[str], step: Mapping[str, set[str]], through: set[str]) -> set[str]:
        """Nodes reachable from `seeds` along `step`, entering only nodes in `through`."""
        seen: set[str] = set()
        stack = [n for s in seeds for n in step.get(s, ()) if n in through]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            stack.extend(n for n in step.get(node, ()) if n in through and n not in seen)
        return seen


def case_marks(bpmn_xml: str | bytes, process_id: str, *, history: Iterable[Mapping[str, Any]],
               open_task_ids: Iterable[str] = (), waiting_ids: Iterable[str] = (), incident_ids: Iterable[str] = (),
               case_status: str = "active") -> dict[str, str]:
    """The marks of a case on its version's diagram (see the module's docstring)."""
    marks = tracked_marks(history, open_task_ids, waiting_ids, incident_ids)
    root = _parse(bpmn_xml)
    process = None
    if root is not None:
        process = next((el for el in root.iter("{*}process") if el.get("id") == process_id), None)
    if process is None:
        return marks
    g = _Graph(process)
    tracked = {n for n in marks if n in g.kind}
    # what a token may have passed without leaving a trace: not a user or service task, which
    # would be in the history had it finished
    untracked = {n for n, kind in g.kind.items() if n not in tracked and kind not in _TRACED}
    done = {n for n in tracked if marks[n] == "done"} | set(g.top_starts)

    def infer(done: set[str]) -> set[str]:
        reached = tracked | done
        forward = g.region(done, g.succ, untracked) | (set(g.top_starts) & untracked)
        backward = g.region(reached, g.pred, untracked)
        return done | (forward & backward)

    done = infer(done)
    if case_status == "completed":
        ends = set()
        for node in done:
            region = g.region([node], g.succ, untracked)
            beyond = {m for n in region | {node} for m in g.succ.get(n, ())}
            if (region | beyond) & (tracked | done):
                continue  # the branch went on to something marked
            found = [n for n in region if g.kind.get(n) == "endEvent"]
            if len(found) == 1:
                ends.add(found[0])
        if ends:
            done = infer(done | ends)
    inferred: dict[str, str] = {}
    for node in done - tracked:
        inferred[node] = "done"
    if case_status in ("active", "suspended"):
        for node, kind in g.kind.items():
            if kind == "parallelGateway" and node not in done and len(g.pred[node]) > 1 and g.pred[node] & done:
                inferred[node] = "waiting"
        for sub, triggered in g.subprocesses.items():
            if not triggered and sub in done and _EXIT + sub not in done and sub not in tracked:
                inferred[sub] = "active"
    for sub in g.subprocesses:
        if _EXIT + sub in done and sub not in tracked:
            inferred[sub] = "done"
    out = dict(marks)
    for node, mark in inferred.items():
        if not node.startswith(_EXIT):
            out[node] = mark
    marked = set(out) | {n for n in done}
    for flow_id, source, target in g.flows:
        if flow_id and source in done and (target in marked or target in inferred):
            out.setdefault(flow_id, "done")
    return out
