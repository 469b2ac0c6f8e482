"""Checking a deployment as a whole, before anything is stored.

Every problem is collected (not just the first) and located as `file:line element-id`, because
the people reading them are process designers fixing a diagram in a modeler. Checks, in order:
size; UTF-8; well-formed XML with no DOCTYPE at all (entities, DTDs and network access off);
the BPMN 2.0 XSD; SpiffWorkflow's own parse; every script and expression compiled by the
sandbox; every service operator registered with the parameters it declares; every sequence
flow, default flow, boundary event and errorRef/messageRef/… pointing at something that exists;
every call activity resolvable and no call cycle; every lane a known role; every form file
(a user task's, or the start form on a process's own start event) present and a valid JSON
Schema. Where SpiffWorkflow's own message for a problem is misleading (a missing flow target, a
missing errorRef), ours is reported instead of it.

A version's meta records, beside the lanes' roles and the names, each user task's form ("forms")
and UI schema ("ui_forms"), and the start form ("start_form", "start_ui"): the data a case of
the process is started with, which the web pages draw and check before the case exists.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SPIFF_XSD

from domain.roles import ROLES, role_for_lane
from engine import sandbox
from engine.errors import Problem
from engine.spiff import AppParser
from handlers.registry import TYPE_NAMES, OperatorRegistry

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 200

KNOWN_SPIFF_ELEMENTS = {
    "serviceTaskOperator", "parameters", "parameter", "retry", "properties", "property",
    "instructionsForEndUser", "preScript", "postScript", "messageVariable", "messagePayload",
    "variableName", "calledDecisionId", "unitTests", "unitTest", "inputJson", "expectedOutputJson",
    "category", "signalPayload", "signalVariable", "processVariableCorrelation", "allowGuest",
    "guestConfirmation", "dataStore",
}
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")
SUBPROCESS_TAGS = ("subProcess", "transaction", "adHocSubProcess")
# Children of a process that are not flow nodes a sequence flow may connect.
NOT_FLOW_NODES = {f"{{{BPMN}}}{t}" for t in (
    "sequenceFlow", "laneSet", "documentation", "extensionElements", "ioSpecification", "property",
    "dataObject", "dataObjectReference", "dataStoreReference", "textAnnotation", "association", "group",
    "ioBinding", "correlationSubscription", "supports", "auditing", "monitoring", "resourceRole",
    "performer", "humanPerformer", "potentialOwner", "category",
)}
# Elements whose ids modelers generate but do not show; problems name their owner instead.
HIDDEN_ID_TAGS = {"conditionExpression", "timeDuration", "timeDate", "timeCycle", "script", "loopCardinality",
                  "completionCondition", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics"}
DOCTYPE_MESSAGE = ("DOCTYPE and entity declarations are not allowed in BPMN files "
                   "(they can read local files or expand without bound); remove the <!DOCTYPE …> block")


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return BpmnValidator(imports={"spiffworkflow": SPIFF_XSD}).validator


def secure_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=False,
    )


@dataclass
class BpmnFile:
    name: str
    content: bytes
    tree: Any = None  # lxml ElementTree once parsed
    process_ids: list[str] = field(default_factory=list)  # executable processes defined here
    process_nodes: dict[str, Any] = field(default_factory=dict)  # their <process> elements

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")


@dataclass
class CheckedProcess:
    """What deployment stores for one executable process."""

    process_id: str
    name: str | None
    file: BpmnFile
    called: list[str]
    assets: dict[str, str]
    meta: dict[str, Any]


@dataclass
class ValidationResult:
    problems: list[Problem]
    processes: dict[str, CheckedProcess]


class DeploymentValidator:
    """Validates a set of files. `deployed_xml(process_id)` gives already deployed callees."""

    def __init__(
        self,
        registry: OperatorRegistry,
        deployed_xml: Callable[[str], list[tuple[str, bytes]] | None],
    ) -> None:
        self.registry = registry
        self.deployed_xml = deployed_xml
        self._explained: set[tuple[str, str | None]] = set()  # (file, element id) our checks reported

    def validate(self, files: Iterable[tuple[str, bytes]]) -> ValidationResult:
        problems: list[Problem] = []
        bpmn_files: list[BpmnFile] = []
        others: dict[str, bytes] = {}
        files = list(files)
        if not files:
            problems.append(Problem("-", None, None, "nothing to deploy: no files were given"))
        if len(files) > MAX_FILES:
            problems.append(Problem("-", None, None, f"too many files ({len(files)}); the limit is {MAX_FILES}"))
            files = files[:MAX_FILES]
        seen: set[str] = set()
        for name, content in files:
            if name in seen:
                problems.append(Problem(name, None, None, "the same file name is given twice"))
                continue
            seen.add(name)
            if len(content) > MAX_FILE_BYTES:
                problems.append(Problem(name, None, None,
                                        f"file is {len(content)} bytes; the limit is {MAX_FILE_BYTES}"))
                continue
            if name.lower().endswith((".bpmn", ".bpmn20.xml", ".xml")):
                bpmn_files.append(BpmnFile(name, content))
            else:
                others[name] = content
        for bf in bpmn_files:
            problems.extend(self._parse_xml(bf))
        good = [bf for bf in bpmn_files if bf.tree is not None]
        for bf in good:
            problems.extend(self._check_xsd(bf))
        processes: dict[str, CheckedProcess] = {}
        defined: dict[str, BpmnFile] = {}
        unnamed: set[str] = set()
        for bf in good:
            for proc in bf.tree.getroot().iterfind("bpmn:process", NS):
                pid = proc.get("id")
                if not pid:
                    problems.append(Problem(bf.name, proc.sourceline, None,
                                            "process has no id: give it one (snake_case English, unique)"))
                    unnamed.add(bf.name)
                    continue
                if pid in defined:
                    problems.append(Problem(bf.name, proc.sourceline, pid,
                                            f"process id '{pid}' is also defined in {defined[pid].name}"))
                    continue
                defined[pid] = bf
                if proc.get("isExecutable") == "true":
                    bf.process_ids.append(pid)
                    bf.process_nodes[pid] = proc
            if not bf.process_ids and bf.name not in unnamed:
                problems.append(Problem(
                    bf.name, bf.tree.getroot().sourceline, None,
                    "no executable process: set isExecutable=\"true\" on the process to deploy it",
                ))
        self._explained = set()
        for bf in good:
            problems.extend(self._lint(bf, others))
        problems.extend(self._check_spiff(good, defined))
        problems.extend(_call_cycles(good))
        for bf in good:
            for pid, proc in bf.process_nodes.items():
                processes[pid] = CheckedProcess(
                    process_id=pid,
                    name=proc.get("name"),
                    file=bf,
                    called=sorted({c.get("calledElement") for c in proc.iterfind(".//bpmn:callActivity", NS)
                                   if c.get("calledElement")}),
                    assets=_assets_of(proc, others),
                    meta=_meta_of(bf.tree.getroot(), proc),
                )
        return ValidationResult(problems=problems, processes=processes)

    # ------------------------------------------------------------------ XML and XSD

    def _parse_xml(self, bf: BpmnFile) -> list[Problem]:
        # Decoded before lxml sees it: a UTF-16 file would hide "<!DOCTYPE" from the byte search below.
        try:
            bf.content.decode("utf-8")
        except UnicodeDecodeError as err:
            return [Problem(bf.name, bf.content[: err.start].count(b"\n") + 1, None,
                            f"the file is not UTF-8 encoded (byte {err.start}); save it as UTF-8")]
        doctype = _doctype_at(bf.content)
        if doctype is not None:
            return [Problem(bf.name, bf.content[:doctype].count(b"\n") + 1, None, DOCTYPE_MESSAGE)]
        try:
            tree = etree.ElementTree(etree.fromstring(bf.content, secure_parser()))
        except etree.XMLSyntaxError as err:
            line = err.lineno if err.lineno else None
            msg = err.msg if hasattr(err, "msg") and err.msg else str(err)
            return [Problem(bf.name, line, None, f"not well-formed XML: {msg}")]
        if tree.docinfo.doctype:  # the byte search missed it (it should not); never go on with a DTD
            return [Problem(bf.name, None, None, DOCTYPE_MESSAGE)]
        root = tree.getroot()
        if root.tag != f"{{{BPMN}}}definitions":
            return [Problem(bf.name, root.sourceline, root.get("id"),
                            f"not a BPMN 2.0 file: the root element is {root.tag}, "
                            f"expected definitions in namespace {BPMN}")]
        bf.tree = tree
        return []

    def _check_xsd(self, bf: BpmnFile) -> list[Problem]:
        schema = _schema()
        try:
            if schema.validate(bf.tree):
                return []
        except etree.Error as err:  # libxml2 gives up on some inputs ("Internal error") instead of reporting
            return [Problem(bf.name, None, None, f"cannot be checked against the BPMN schema: {err}")]
        out = []
        for entry in schema.error_log:
            out.append(Problem(bf.name, entry.line, _id_at_line(bf.tree, entry.line),
                               f"BPMN schema: {_clean_xsd_message(entry.message)}"))
        return out

    # ------------------------------------------------------------------ scripts, operators, lanes, forms

    def _lint(self, bf: BpmnFile, others: dict[str, bytes]) -> list[Problem]:
        out: list[Problem] = []
        root = bf.tree.getroot()

        def add(node: Any, element_id: str | None, message: str) -> None:
            out.append(Problem(bf.name, node.sourceline, element_id, message))

        def check_code(node: Any, element_id: str | None, what: str, source: str | None, mode: str) -> None:
            if source is None or not source.strip():
                if what != "script":
                    add(node, element_id, f"{what} is empty")
                return
            for err in sandbox.lint(source if mode == "exec" else source.strip(), mode):
                add(node, element_id, f"{what}: {err}")

        for proc in root.iterfind("bpmn:process", NS):
            if proc.get("isExecutable") != "true":
                continue
            for node in proc.iter():
                if not isinstance(node.tag, str):
                    continue
                tag = etree.QName(node).localname
                owner = _owner_id(node)
                if node.tag == f"{{{BPMN}}}script":
                    check_code(node, owner, "script", node.text, "exec")
                elif node.tag == f"{{{BPMN}}}conditionExpression":
                    check_code(node, owner, "condition", node.text, "eval")
                elif node.tag in (f"{{{BPMN}}}timeDuration", f"{{{BPMN}}}timeDate", f"{{{BPMN}}}timeCycle"):
                    check_code(node, owner, f"timer {tag}", node.text, "eval")
                    out.extend(_timer_literal_problems(bf.name, node, owner))
                elif node.tag in (f"{{{BPMN}}}loopCardinality", f"{{{BPMN}}}completionCondition"):
                    check_code(node, owner, tag, node.text, "eval")
                elif node.tag.startswith(f"{{{SPIFF}}}"):
                    if tag not in KNOWN_SPIFF_ELEMENTS:
                        add(node, owner, f"unknown SpiffWorkflow extension <spiffworkflow:{tag}> "
                                         "(a typo? it would be silently ignored)")
                    elif tag in ("preScript", "postScript"):
                        check_code(node, owner, tag, node.text, "exec")
                    elif tag == "messagePayload":
                        check_code(node, owner, tag, node.text, "eval")
                    elif tag == "serviceTaskOperator":
                        out.extend(self._check_operator(bf.name, node, owner))
                elif node.tag == f"{{{BPMN}}}userTask":
                    out.extend(_check_forms(bf.name, node, others))
                elif node.tag == f"{{{BPMN}}}startEvent":
                    if node.getparent() is proc:
                        out.extend(_check_forms(bf.name, node, others))
                    elif _form_files(node):
                        add(node, node.get("id"), "a start form belongs on the process's own start event; "
                                                  "a start event inside a subprocess starts no case: remove "
                                                  "formJsonSchemaFilename / formUiSchemaFilename here")
            out.extend(_start_form_count(bf.name, proc))
            out.extend(_check_lanes(bf.name, proc))
            out.extend(self._check_flows(bf, proc))
        return out

    def _check_flows(self, bf: BpmnFile, proc: Any) -> list[Problem]:
        """Sequence flows, default flows and boundary events must point at elements that exist.

        SpiffWorkflow misreports a missing flow target ("we found two items, perhaps a form has
        the same ID?", on the flow's source), and silently accepts a missing source, a default
        flow that is not an outgoing flow and a boundary event attached to nothing.
        """
        out: list[Problem] = []
        containers = [proc, *proc.iterfind(".//bpmn:subProcess", NS), *proc.iterfind(".//bpmn:transaction", NS),
                      *proc.iterfind(".//bpmn:adHocSubProcess", NS)]
        for container in containers:
            where = f"{etree.QName(container).localname} '{container.get('id')}'"
            children = [c for c in container if isinstance(c.tag, str)]
            nodes = {c.get("id"): c for c in children if c.get("id") and c.tag not in NOT_FLOW_NODES}
            flows = [c for c in children if c.tag == f"{{{BPMN}}}sequenceFlow"]
            outgoing: dict[str, set[str]] = {}
            for flow in flows:
                fid, source, target = flow.get("id"), flow.get("sourceRef"), flow.get("targetRef")
                outgoing.setdefault(source, set()).add(fid)
                for attr, ref, verb in (("sourceRef", source, "comes from"), ("targetRef", target, "goes to")):
                    if ref not in nodes:
                        out.append(Problem(
                            bf.name, flow.sourceline, fid,
                            f"sequence flow '{fid}' {verb} '{ref}' ({attr}), but {where} has no element "
                            "with that id: correct the reference or add the element"))
                        if source in nodes:
                            self._explained.add((bf.name, source))
            for node in nodes.values():
                default = node.get("default")
                if default and default not in outgoing.get(node.get("id"), set()):
                    out.append(Problem(bf.name, node.sourceline, node.get("id"),
                                       f"default flow '{default}' is not a sequence flow leaving "
                                       f"'{node.get('id')}'"))
                    self._explained.add((bf.name, node.get("id")))
                attached = node.get("attachedToRef")
                if node.tag == f"{{{BPMN}}}boundaryEvent" and attached not in nodes:
                    out.append(Problem(bf.name, node.sourceline, node.get("id"),
                                       f"boundary event is attached to '{attached}', but {where} has no "
                                       "element with that id"))
                    self._explained.add((bf.name, node.get("id")))
        return out

    def _check_operator(self, filename: str, node: Any, owner: str | None) -> list[Problem]:
        out: list[Problem] = []
        name = node.get("id")
        op = self.registry.get(name or "")
        if op is None:
            known = ", ".join(self.registry.names()) or "none"
            return [Problem(filename, node.sourceline, owner,
                            f"service operator '{name}' is not registered (known operators: {known})")]
        given: dict[str, Any] = {}
        for param in node.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS):
            pid = param.get("id")
            given[pid] = param
            declared = op.param(pid)
            if declared is None:
                out.append(Problem(filename, param.sourceline, owner,
                                   f"operator '{name}' has no parameter '{pid}' "
                                   f"(it takes: {', '.join(p.name for p in op.params) or 'nothing'})"))
                continue
            ptype = param.get("type")
            if ptype and ptype not in TYPE_NAMES:
                out.append(Problem(filename, param.sourceline, owner,
                                   f"parameter '{pid}' has unknown type '{ptype}' "
                                   f"(use one of {', '.join(TYPE_NAMES)})"))
            elif ptype and declared.type != "any" and ptype != "any" and ptype != declared.type:
                out.append(Problem(filename, param.sourceline, owner,
                                   f"parameter '{pid}' is declared {declared.type} by operator '{name}', "
                                   f"the diagram says {ptype}"))
            value = param.get("value")
            if value is None or not value.strip():
                out.append(Problem(filename, param.sourceline, owner, f"parameter '{pid}' has no value"))
            else:
                for err in sandbox.lint(value.strip(), "eval"):
                    out.append(Problem(filename, param.sourceline, owner, f"parameter '{pid}': {err}"))
        for p in op.params:
            if p.required and p.name not in given:
                out.append(Problem(filename, node.sourceline, owner,
                                   f"operator '{name}' needs parameter '{p.name}' ({p.type})"))
        return out

    # ------------------------------------------------------------------ SpiffWorkflow's parse

    def _check_spiff(self, good: list[BpmnFile], defined: dict[str, BpmnFile]) -> list[Problem]:
        out: list[Problem] = []
        executable = [bf for bf in good if bf.process_ids]
        if not executable:
            return out
        parser = AppParser(validator=None)
        unread: set[str] = set()
        for bf in good:
            stores = _data_store_problems(bf, parser)
            if stores:
                out.extend(stores)
                unread.add(bf.name)
                continue
            try:
                parser.add_bpmn_xml(_copy_tree(bf.tree), filename=bf.name)
            except ValidationException as err:
                out.append(_from_validation_exception(err, bf))
                unread.add(bf.name)
            except Exception as err:  # noqa: BLE001 — the parser's own defects must still be reported
                out.append(Problem(bf.name, None, None, f"cannot be read by the engine: {err}"))
                unread.add(bf.name)
        missing = self._add_deployed_callees(parser, good, defined, out)
        for bf in good:
            out.extend(self._check_event_refs(bf, parser, good))
        for bf in executable:
            if bf.name in unread:
                continue  # its processes were never added; "process not found" would only repeat that
            for pid in bf.process_ids:
                try:
                    parser.get_spec(pid)
                    parser.get_subprocess_specs(pid)
                except ValidationException as err:
                    if any(m in str(err) for m in missing):
                        continue  # already reported at the call activity
                    if (getattr(err, "file_name", None) or bf.name, getattr(err, "id", None)) in self._explained:
                        continue  # already reported by our own check, with a clearer message
                    out.append(_from_validation_exception(err, bf))
                except Exception as err:  # noqa: BLE001
                    out.append(Problem(bf.name, None, pid, f"cannot be read by the engine: {err}"))
        return out

    def _check_event_refs(self, bf: BpmnFile, parser: AppParser, good: list[BpmnFile]) -> list[Problem]:
        """errorRef, messageRef, … must name a definition (in any file of the deployment).

        SpiffWorkflow 3.2.0 crashes on a missing one with a TypeError about its own
        raise_validation_exception(), which tells a designer nothing.
        """
        out = []
        known: dict[str, set[str]] = {"error": set(parser.errors), "message": set(parser.messages),
                                      "signal": set(parser.signals), "escalation": set(parser.escalations)}
        for other in good:  # also files the parser refused, so their own problems are not misreported here
            for kind, ids in known.items():
                ids.update(el.get("id") for el in other.tree.getroot().iterfind(f".//bpmn:{kind}", NS))
        for node in bf.tree.getroot().iter():
            if not isinstance(node.tag, str) or not node.tag.startswith(f"{{{BPMN}}}"):
                continue
            tag = etree.QName(node).localname
            kind = tag.removesuffix("EventDefinition")
            if kind == tag:
                kind = "message" if tag in ("receiveTask", "sendTask") else None
            if kind not in known:
                continue
            ref = node.get(f"{kind}Ref")
            if ref and ref not in known[kind]:
                owner = _owner_id(node if tag in ("receiveTask", "sendTask") else node.getparent())
                out.append(Problem(bf.name, node.sourceline, owner,
                                   f"{kind}Ref '{ref}' names no <bpmn:{kind}>: define it under "
                                   f"<bpmn:definitions> or correct the reference"))
                self._explained.add((bf.name, owner))
        return out

    def _add_deployed_callees(self, parser: AppParser, good: list[BpmnFile], defined: dict[str, BpmnFile],
                              out: list[Problem]) -> set[str]:
        missing: set[str] = set()
        added: set[str] = set()
        pending = [(bf, c) for bf in good for c in bf.tree.getroot().iterfind(".//bpmn:callActivity", NS)]
        while pending:
            bf, call = pending.pop()
            called = call.get("calledElement")
            if not called:
                out.append(Problem(bf.name, call.sourceline, call.get("id"),
                                   "call activity names no process (calledElement is empty)"))
                continue
            if called in defined or called in added:
                continue
            deployed = self.deployed_xml(called)
            if deployed is None:
                missing.add(called)
                out.append(Problem(bf.name, call.sourceline, call.get("id"),
                                   f"calls process '{called}', which is neither in this deployment nor deployed"))
                continue
            for fname, xml in deployed:
                tree = etree.ElementTree(etree.fromstring(xml, secure_parser()))
                for proc in tree.getroot().iterfind("bpmn:process", NS):
                    added.add(proc.get("id"))
                try:
                    parser.add_bpmn_xml(tree, filename=fname)
                except ValidationException:
                    pass  # already deployed, hence already valid; duplicates mean it was added before
                dep = BpmnFile(fname, xml, tree)
                pending.extend((dep, c) for c in tree.getroot().iterfind(".//bpmn:callActivity", NS))
        return missing


# ---------------------------------------------------------------------------- helpers

def _copy_tree(tree: Any) -> Any:
    return etree.ElementTree(etree.fromstring(etree.tostring(tree), secure_parser()))


def _owner_id(node: Any) -> str | None:
    """The id a designer sees for a node: its flow element's (a modeler hides expression ids)."""
    while node is not None:
        if (isinstance(node.tag, str) and node.get("id") and not node.tag.startswith(f"{{{SPIFF}}}")
                and etree.QName(node).localname not in HIDDEN_ID_TAGS
                and not node.tag.endswith("EventDefinition")):
            return node.get("id")
        node = node.getparent()
    return None


def _id_at_line(tree: Any, line: int | None) -> str | None:
    if line is None:
        return None
    best = None
    for el in tree.getroot().iter():
        if not isinstance(el.tag, str):
            continue
        if el.sourceline == line:
            return _owner_id(el)
        if el.sourceline is not None and el.sourceline < line:
            best = el
    return _owner_id(best) if best is not None else None


def _clean_xsd_message(message: str) -> str:
    return message.replace(f"{{{BPMN}}}", "bpmn:").replace(f"{{{SPIFF}}}", "spiffworkflow:")


def _from_validation_exception(err: ValidationException, bf: BpmnFile) -> Problem:
    element_id = getattr(err, "id", None) or None
    line = getattr(err, "line_number", None) or None
    if line is None and element_id:
        found = bf.tree.getroot().xpath(".//*[@id=$id]", id=element_id)  # a variable: ids may hold quotes
        line = found[0].sourceline if found else None
    filename = getattr(err, "file_name", None) or bf.name
    # str() of a SpiffWorkflowException appends ". " and its notes; take the message itself
    parts = [str(err.args[0]) if err.args else str(err), *getattr(err, "notes", [])]
    message = ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip()).split("\n")[0]
    for prefix in ("Error: ", "ValidationException: "):
        message = message.removeprefix(prefix)
    return Problem(filename, line, element_id, message)


def _call_cycles(files: list[BpmnFile]) -> list[Problem]:
    """Processes of one deployment calling each other in a circle cannot be versioned (each version
    pins the versions it calls), so they are reported here, at the call activity, with the others."""
    calls: dict[str, list[tuple[str, BpmnFile, Any]]] = {}
    for bf in files:
        for pid, proc in bf.process_nodes.items():
            calls[pid] = [(c.get("calledElement"), bf, c) for c in proc.iterfind(".//bpmn:callActivity", NS)]
    out: list[Problem] = []
    done: set[str] = set()

    def visit(pid: str, path: tuple[str, ...]) -> None:
        for called, bf, node in calls.get(pid, []):
            if called in path:
                cycle = (*path[path.index(called):], called)
                out.append(Problem(bf.name, node.sourceline, node.get("id"),
                                   "call activities call each other in a cycle: " + " → ".join(cycle)))
            elif called in calls and called not in done:
                visit(called, (*path, called))
        done.add(pid)

    for pid in sorted(calls):
        if pid not in done:
            visit(pid, (pid,))
    return out


def _doctype_at(content: bytes) -> int | None:
    """Offset of a DOCTYPE or ENTITY declaration (anywhere: comments may push it past any prefix)."""
    upper = content.upper()
    found = [i for i in (upper.find(b"<!DOCTYPE"), upper.find(b"<!ENTITY")) if i >= 0]
    return min(found) if found else None


def _data_store_problems(bf: BpmnFile, parser: AppParser) -> list[Problem]:
    out = []
    for store in bf.tree.getroot().iterfind("bpmn:dataStore", NS):
        name = store.get("name")
        if name not in parser.DATA_STORE_CLASSES:
            out.append(Problem(bf.name, store.sourceline, store.get("id"),
                               f"data store '{name}' is not supported by this engine: "
                               "keep data in the case, or call a service task"))
    return out


def _timer_literal_problems(filename: str, node: Any, owner: str | None) -> list[Problem]:
    """A bare ISO literal (PT1H) is a Python syntax error; say what to write instead."""
    text = (node.text or "").strip()
    if text[:1] in ("P", "R") and text.replace(":", "").replace("-", "").replace(".", "").isalnum():
        return [Problem(filename, node.sourceline, owner,
                        f"timer expressions are Python: write \"{text}\" in quotes")]
    return []


def _check_lanes(filename: str, proc: Any) -> list[Problem]:
    out = []
    for lane in proc.iterfind(".//bpmn:lane", NS):
        if lane.find("bpmn:childLaneSet", NS) is not None:
            continue  # a parent lane groups roles; its child lanes are checked
        if role_for_lane(lane.get("id"), lane.get("name")) is None:
            out.append(Problem(
                filename, lane.sourceline, lane.get("id"),
                f"lane '{lane.get('name') or lane.get('id')}' is not a known role "
                f"(known roles: {', '.join(f'{c} {n}' for c, n in ROLES.items())})",
            ))
    return out


def _form_files(task: Any) -> dict[str, str]:
    found = {}
    for prop in task.iterfind("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS):
        if prop.get("name") in FORM_PROPERTIES and prop.get("value"):
            found[prop.get("name")] = prop.get("value")
    return found


def _check_forms(filename: str, task: Any, others: dict[str, bytes]) -> list[Problem]:
    out = []
    for prop, fname in _form_files(task).items():
        if fname not in others:
            out.append(Problem(filename, task.sourceline, task.get("id"),
                               f"{prop} names '{fname}', which is not in the deployment"))
            continue
        try:
            doc = json.loads(others[fname])
        except (ValueError, UnicodeDecodeError) as err:
            out.append(Problem(fname, getattr(err, "lineno", None), task.get("id"), f"not valid JSON: {err}"))
            continue
        if prop == "formJsonSchemaFilename":
            try:
                jsonschema.validators.validator_for(doc).check_schema(doc)
            except jsonschema.SchemaError as err:
                out.append(Problem(fname, None, task.get("id"), f"not a valid JSON Schema: {err.message}"))
    return out


def _start_events_with_forms(proc: Any) -> list[Any]:
    """The process's own (top-level) start events that name a start form."""
    return [e for e in proc.iterfind("bpmn:startEvent", NS) if _form_files(e)]


def _start_form_count(filename: str, proc: Any) -> list[Problem]:
    """A case starts with one set of data: at most one start event of a process names a start form."""
    events = _start_events_with_forms(proc)
    if len(events) <= 1:
        return []
    return [Problem(filename, e.sourceline, e.get("id"),
                    f"start events {', '.join(x.get('id') for x in events)} all name a start form; a case "
                    "starts with one set of data: keep the form on one of them") for e in events[1:]]


def _assets_of(proc: Any, others: dict[str, bytes]) -> dict[str, str]:
    """The form files the process's user tasks and its own start event name, by file name."""
    assets = {}
    for task in [*proc.iterfind(".//bpmn:userTask", NS), *_start_events_with_forms(proc)]:
        for fname in _form_files(task).values():
            if fname in others:
                assets[fname] = others[fname].decode("utf-8")
    return assets


def _meta_of(root: Any, proc: Any) -> dict[str, Any]:
    roles: dict[str, str] = {}
    for lane in proc.iterfind(".//bpmn:lane", NS):
        role = role_for_lane(lane.get("id"), lane.get("name"))
        if role is None:
            continue
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            if not ref.text:
                continue
            node_id = ref.text.strip()
            roles[node_id] = role
            node = proc.find(f".//*[@id='{node_id}']") if "'" not in node_id else None
            if node is not None and etree.QName(node).localname in SUBPROCESS_TAGS:
                for inner in node.iter():  # tasks inside a subprocess belong to its lane
                    if isinstance(inner.tag, str) and inner.get("id"):
                        roles.setdefault(inner.get("id"), role)
    names = {el.get("id"): el.get("name") for el in proc.iter() if isinstance(el.tag, str)
             and el.get("id") and el.get("name")}
    tasks = list(proc.iterfind(".//bpmn:userTask", NS))
    forms = {task.get("id"): form for task in tasks if (form := _form_files(task).get("formJsonSchemaFilename"))}
    ui_forms = {task.get("id"): ui for task in tasks if (ui := _form_files(task).get("formUiSchemaFilename"))}
    doc = proc.find("bpmn:documentation", NS)
    documentation = (doc.text or "").strip() if doc is not None else ""
    meta: dict[str, Any] = {"roles": roles, "names": names, "forms": forms, "ui_forms": ui_forms,
                            "documentation": documentation}
    starts = _start_events_with_forms(proc)
    if starts:  # validation allows one; the data a case of this process is started with
        start = _form_files(starts[0])
        if start.get("formJsonSchemaFilename"):
            meta["start_form"] = start["formJsonSchemaFilename"]
        if start.get("formUiSchemaFilename"):
            meta["start_ui"] = start["formUiSchemaFilename"]
    return meta
