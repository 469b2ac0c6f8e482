"""Deployment validation as a process designer meets it: every problem at once, each as
`file:line element-id: what is wrong`, and nothing stored unless everything is right."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DeploymentRejected, Problem
from engine.validation import MAX_FILE_BYTES, DeploymentValidator
from tests.conftest import CLERK, bpmn, open_task
from tests.diagrams import call_activity, chain, definitions, line_of, script_task, service_task, user_task

# the workplace's shared/ folder sits beside the checkout (CI clones main with shared/ beside it)
SHARED = Path(os.environ.get("ONEWINDOW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MIWG = SHARED / "conformance" / "miwg-reference"
PROBLEM_LINE = re.compile(r"^(?P<file>[\w.@/-]+):(?P<line>\d+) (?P<id>[\w.-]+): (?P<message>.+)$")


def rejected(engine, files: list[tuple[str, bytes]]) -> list[Problem]:
    with pytest.raises(DeploymentRejected) as exc:
        engine.deploy(files, "designer")
    assert engine.versions() == []
    return exc.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


GOOD = definitions(chain(user_task()), pid="good_one")


# ---------------------------------------------------------------------------- the file itself

def test_malformed_xml_names_file_and_line(engine):
    content = definitions(chain(user_task())).replace(b'<bpmn:endEvent id="end"/>', b'<bpmn:endEvent id="end">')
    problem = only(rejected(engine, [("broken.bpmn", content)]))
    assert problem.file == "broken.bpmn"
    assert problem.line == line_of(content, "</bpmn:process>")  # where the mismatch shows
    assert "not well-formed XML" in problem.message and "endEvent" in problem.message


PASSWD_LINE = Path("/etc/passwd").read_text().splitlines()[0]
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
    '<bpmn:process id="p" isExecutable="true"><bpmn:documentation>&e;</bpmn:documentation>'
    '<bpmn:startEvent id="start"/></bpmn:process></bpmn:definitions>\n'
)
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + ']>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
    '<bpmn:process id="p" isExecutable="true"><bpmn:documentation>&lol9;</bpmn:documentation>'
    '</bpmn:process></bpmn:definitions>\n'
)
# an external DTD and an entity it would define, behind a comment longer than any prefix check
LATE_DOCTYPE = XXE.replace('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
                           "<!--" + "x" * 5000 + '-->\n<!DOCTYPE x SYSTEM "file:///etc/passwd">')


@pytest.mark.parametrize("content", [
    pytest.param(XXE.encode(), id="xxe"),
    pytest.param(LAUGHS.encode(), id="billion-laughs"),
    pytest.param(LATE_DOCTYPE.encode(), id="doctype-after-a-long-comment"),
    pytest.param(XXE.replace('"?>', '" encoding="UTF-16"?>').encode("utf-16"), id="xxe-in-utf16"),
])
def test_entities_are_rejected_never_expanded(engine, content):
    started = time.monotonic()
    problem = only(rejected(engine, [("evil.bpmn", content)]))
    assert time.monotonic() - started < 2
    assert problem.file == "evil.bpmn" and problem.line is not None
    assert "DOCTYPE" in problem.message or "UTF-8" in problem.message
    assert PASSWD_LINE not in str(problem) and "lollollol" not in str(problem)


@pytest.mark.parametrize("process, words", [
    pytest.param('<bpmn:process isExecutable="true">', ["process has no id"], id="no-id"),
    pytest.param('<bpmn:process id="it\'s" isExecutable="true">', ["BPMN schema", "it's"], id="quote-in-id"),
])
def test_a_process_without_a_usable_id(engine, process, words):
    content = GOOD.replace('<bpmn:process id="good_one" name="测试流程" isExecutable="true">'.encode(),
                           process.encode())
    problems = rejected(engine, [("ids.bpmn", content)])
    text = "\n".join(map(str, problems))
    for word in words:
        assert word in text


def test_a_file_that_is_not_bpmn(engine):
    problem = only(rejected(engine, [("pom.xml", b'<?xml version="1.0"?>\n<project><name>x</name></project>\n')]))
    assert (problem.file, problem.line) == ("pom.xml", 2)
    assert "not a BPMN 2.0 file" in problem.message and "project" in problem.message


def test_a_schema_violation_names_its_line(engine):
    content = definitions(chain(user_task()) + '\n<bpmn:userTaks id="typo"/>')
    problem = only(rejected(engine, [("schema.bpmn", content)]))
    assert problem.line == line_of(content, "<bpmn:userTaks")
    assert problem.message.startswith("BPMN schema:") and "userTaks" in problem.message


def test_a_file_with_no_executable_process(engine):
    problem = only(rejected(engine, [("drawing.bpmn", definitions(chain(user_task()), executable=False))]))
    assert problem.file == "drawing.bpmn"
    assert 'isExecutable="true"' in problem.message


def test_oversized_file_is_rejected_before_parsing(engine):
    padding = b"<!--" + b"x" * MAX_FILE_BYTES + b"-->\n"
    content = GOOD.replace(b"<bpmn:process", padding + b"<bpmn:process", 1)
    started = time.monotonic()
    problem = only(rejected(engine, [("huge.bpmn", content)]))
    assert time.monotonic() - started < 2
    assert problem.file == "huge.bpmn" and str(MAX_FILE_BYTES) in problem.message


# ---------------------------------------------------------------------------- flows and references

def test_dangling_target_names_the_flow_and_what_is_wrong(engine):
    content = definitions(chain(user_task()).replace('targetRef="end"', 'targetRef="archive"'))
    problem = only(rejected(engine, [("flow.bpmn", content)]))
    assert (problem.line, problem.element_id) == (line_of(content, 'targetRef="archive"'), "f1")
    assert "'archive'" in problem.message and "targetRef" in problem.message
    assert "two items" not in problem.message  # SpiffWorkflow's misleading text is not passed on


def test_dangling_source_is_not_silently_accepted(engine):
    content = definitions(chain(user_task()).replace('id="f1" sourceRef="review"', 'id="f1" sourceRef="reveiw"'))
    problem = only(rejected(engine, [("flow.bpmn", content)]))
    assert problem.element_id == "f1" and "'reveiw'" in problem.message and "sourceRef" in problem.message


@pytest.mark.parametrize("body, element_id, words", [
    pytest.param(chain('<bpmn:exclusiveGateway id="decide" default="f_missing"/>'), "decide",
                 ["default flow 'f_missing'"], id="default-flow"),
    pytest.param(chain(user_task()) + '\n<bpmn:boundaryEvent id="late" attachedToRef="reviw">'
                 '<bpmn:timerEventDefinition><bpmn:timeDuration>"P5D"</bpmn:timeDuration>'
                 '</bpmn:timerEventDefinition></bpmn:boundaryEvent>', "late", ["attached to 'reviw'"],
                 id="boundary-attached-to-nothing"),
    pytest.param(chain(user_task()).replace('<bpmn:endEvent id="end"/>', '<bpmn:endEvent id="end">'
                 '<bpmn:errorEventDefinition errorRef="err_seized"/></bpmn:endEvent>'), "end",
                 ["errorRef 'err_seized'", "<bpmn:error>"], id="error-ref"),
    pytest.param(chain('<bpmn:receiveTask id="wait_bank" messageRef="msg_release"/>'), "wait_bank",
                 ["messageRef 'msg_release'"], id="message-ref"),
])
def test_references_to_nothing_are_explained(engine, body, element_id, words):
    problem = only(rejected(engine, [("refs.bpmn", definitions(body))]))
    assert problem.element_id == element_id and problem.line is not None
    for word in words:
        assert word in problem.message
    assert "TypeError" not in problem.message


def test_an_unsupported_data_store_is_the_one_problem_reported(engine):
    content = definitions(chain('<bpmn:receiveTask id="wait_bank" messageRef="msg_release"/>'), before=(
        '  <bpmn:dataStore id="ledger" name="财务账簿"/>\n  <bpmn:message id="msg_release" name="released"/>\n'))
    problem = only(rejected(engine, [("store.bpmn", content)]))
    assert (problem.line, problem.element_id) == (line_of(content, "<bpmn:dataStore"), "ledger")
    assert "data store '财务账簿' is not supported" in problem.message


# ---------------------------------------------------------------------------- expressions

def test_script_syntax_error_names_task_and_line(engine):
    content = definitions(chain(script_task("fee = 80\ntotal = fee +* 2")))
    problem = only(rejected(engine, [("fees.bpmn", content)]))
    assert (problem.line, problem.element_id) == (line_of(content, "<bpmn:scriptTask"), "calc")
    assert problem.message.startswith("script: Line 2: SyntaxError")


def test_condition_syntax_error_names_the_flow(engine):
    body = chain('<bpmn:exclusiveGateway id="decide" default="f1"/>') + (
        '\n<bpmn:sequenceFlow id="f_ok" sourceRef="decide" targetRef="end">'
        "<bpmn:conditionExpression>approved = True</bpmn:conditionExpression></bpmn:sequenceFlow>")
    content = definitions(body)
    problem = only(rejected(engine, [("route.bpmn", content)]))
    assert (problem.line, problem.element_id) == (line_of(content, 'id="f_ok"'), "f_ok")
    assert problem.message.startswith("condition: Line 1: SyntaxError")


def test_bare_timer_literal_gets_a_hint(engine):
    body = chain('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="TimerDef_1">'
                 "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"
                 "</bpmn:intermediateCatchEvent>")
    problem = only(rejected(engine, [("timer.bpmn", definitions(body))]))
    assert problem.element_id == "wait"  # the event, not the generated id of its definition
    assert 'write "PT1H" in quotes' in problem.message


def test_unknown_spiffworkflow_extension_is_a_typo(engine):
    task = script_task("x = 1").replace(
        "<bpmn:script>", "<bpmn:extensionElements><spiffworkflow:prescript>y = 2</spiffworkflow:prescript>"
        "</bpmn:extensionElements><bpmn:script>")
    problem = only(rejected(engine, [("ext.bpmn", definitions(chain(task)))]))
    assert problem.element_id == "calc"
    assert "<spiffworkflow:prescript>" in problem.message and "typo" in problem.message


# ---------------------------------------------------------------------------- service operators

@pytest.mark.parametrize("task, words", [
    pytest.param(service_task("calendar.add_workday", ("start", "str", "accepted_on"), ("days", "int", "5")),
                 ["'calendar.add_workday' is not registered", "calendar.add_workdays", "test.court_check"],
                 id="unknown-operator-lists-known-ones"),
    pytest.param(service_task("calendar.add_workdays", ("start", "str", "accepted_on")),
                 ["needs parameter 'days' (int)"], id="missing-parameter"),
    pytest.param(service_task("calendar.add_workdays", ("start", "str", "accepted_on"), ("days", "int", "5"),
                              ("hours", "int", "2")),
                 ["has no parameter 'hours'", "it takes: start, days"], id="undeclared-parameter"),
    pytest.param(service_task("calendar.add_workdays", ("start", "str", "accepted_on"), ("days", "str", "'5'")),
                 ["'days' is declared int", "the diagram says str"], id="type-mismatch"),
])
def test_service_operator_problems(engine, task, words):
    problem = only(rejected(engine, [("svc.bpmn", definitions(chain(task)))]))
    assert problem.element_id == "svc" and problem.line is not None
    for word in words:
        assert word in problem.message


# ---------------------------------------------------------------------------- call activities

def test_call_to_a_process_that_does_not_exist(engine):
    problem = only(rejected(engine, [("parent.bpmn", definitions(chain(call_activity("fee_colection")), "parent"))]))
    assert problem.element_id == "call"
    assert "'fee_colection'" in problem.message and "neither in this deployment nor deployed" in problem.message


def test_call_to_a_process_deployed_earlier_resolves(engine):
    engine.deploy(bpmn("call_child.bpmn"), "designer")
    [parent] = engine.deploy(bpmn("call_parent.bpmn"), "designer")
    child = engine.versions("call_child")[0]
    assert engine.versions("call_parent")[0]["dependencies"] == {"call_child": child["id"]}
    case = engine.start_case("call_parent", {}, CLERK)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)
    assert open_task(engine, case.id, "hand_over")["name"] == "发放证书"


def test_call_within_the_same_deployment_resolves(engine):
    deployed = engine.deploy(bpmn("call_parent.bpmn", "call_child.bpmn"), "designer")
    assert [(d.process_id, d.version) for d in deployed] == [("call_child", 1), ("call_parent", 1)]


def test_processes_calling_each_other_in_a_cycle(engine):
    ping = definitions(chain(call_activity("pong", "to_pong")), "ping")
    pong = definitions(chain(call_activity("ping", "to_ping")), "pong")
    problems = rejected(engine, [("ping.bpmn", ping), ("pong.bpmn", pong)])
    assert [p for p in problems if "cycle" in p.message] == [
        Problem("pong.bpmn", line_of(pong, "<bpmn:callActivity"), "to_ping",
                "call activities call each other in a cycle: ping → pong → ping")]


# ---------------------------------------------------------------------------- lanes and forms

def test_a_lane_that_is_not_a_role(engine):
    body = ('<bpmn:laneSet id="lanes"><bpmn:lane id="cashier" name="收费窗口">'
            "<bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n" + chain(user_task()))
    problem = only(rejected(engine, [("lanes.bpmn", definitions(body))]))
    assert problem.element_id == "cashier"
    assert "'收费窗口' is not a known role" in problem.message and "window_clerk 窗口受理" in problem.message


def test_a_form_file_missing_from_the_deployment(engine):
    task = user_task(formJsonSchemaFilename="review-schema.json")
    problem = only(rejected(engine, [("forms.bpmn", definitions(chain(task)))]))
    assert problem.element_id == "review"
    assert "'review-schema.json'" in problem.message and "not in the deployment" in problem.message


def test_an_invalid_json_schema(engine):
    task = user_task(formJsonSchemaFilename="review-schema.json")
    schema = json.dumps({"type": "objekt", "properties": {"approved": {"type": "boolean"}}}).encode()
    problem = only(rejected(engine, [("forms.bpmn", definitions(chain(task))), ("review-schema.json", schema)]))
    assert (problem.file, problem.element_id) == ("review-schema.json", "review")
    assert "not a valid JSON Schema" in problem.message and "objekt" in problem.message


def test_a_valid_form_is_stored_with_the_version(engine):
    task = user_task(formJsonSchemaFilename="review-schema.json")
    schema = json.dumps({"type": "object", "properties": {"approved": {"type": "boolean"}}}).encode()
    [deployed] = engine.deploy([("forms.bpmn", definitions(chain(task))), ("review-schema.json", schema)], "d")
    case = engine.start_case("p", {}, CLERK)
    assert open_task(engine, case.id, "review")["form"] == "review-schema.json"
    assert deployed.version == 1


# ---------------------------------------------------------------------------- all at once

def test_several_problems_in_several_files_are_reported_together(engine):
    fees = definitions(chain(script_task("fee = = 1"), service_task("tax.asess")), "fees")
    route = definitions(chain(user_task()).replace('targetRef="end"', 'targetRef="nowhere"'), "route")
    broken = b'<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">\n'
    with pytest.raises(DeploymentRejected) as exc:
        engine.deploy([("fees.bpmn", fees), ("route.bpmn", route), ("broken.bpmn", broken), ("good.bpmn", GOOD)],
                      "designer")
    lines = str(exc.value).splitlines()
    assert lines[0] == "deployment rejected, 4 problem(s):"
    parsed = [PROBLEM_LINE.match(line) for line in lines[1:]]
    assert all(parsed), lines
    assert sorted((m["file"], m["id"]) for m in parsed) == [
        ("broken.bpmn", "-"), ("fees.bpmn", "calc"), ("fees.bpmn", "svc"), ("route.bpmn", "f1")]
    assert engine.versions() == []


# ---------------------------------------------------------------------------- storing versions

def test_one_bad_file_stores_nothing(engine):
    bad = definitions(chain(service_task("tax.asess")), "bad_one")
    rejected(engine, [("good.bpmn", GOOD), ("bad.bpmn", bad)])
    assert engine.versions() == []


def test_identical_content_maps_to_the_same_version(engine):
    [first] = engine.deploy([("good.bpmn", GOOD)], "designer")
    [again] = engine.deploy([("renamed.bpmn", GOOD)], "designer")
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.id, again.created) == (1, first.id, False)
    assert len(engine.versions()) == 1


def test_a_changed_file_gets_version_two(engine):
    engine.deploy([("good.bpmn", GOOD)], "designer")
    old_case = engine.start_case("good_one", {}, CLERK)
    changed = GOOD.replace('name="审核"'.encode(), 'name="复审"'.encode())
    [second] = engine.deploy([("good.bpmn", changed)], "designer")
    assert (second.version, second.created) == (2, True)
    assert [v["version"] for v in engine.versions("good_one")] == [1, 2]
    new_case = engine.start_case("good_one", {}, CLERK)
    assert open_task(engine, old_case.id, "review")["name"] == "审核"  # running cases keep their version
    assert open_task(engine, new_case.id, "review")["name"] == "复审"


def test_a_new_version_of_a_called_process_gives_its_caller_one(engine):
    engine.deploy(bpmn("call_parent.bpmn", "call_child.bpmn"), "designer")
    child_v2 = bpmn("call_child.bpmn")[0][1].replace("发放证书".encode(), "发放新证书".encode())
    deployed = engine.deploy([("call_child.bpmn", child_v2)], "designer")
    assert {(d.process_id, d.version) for d in deployed} == {("call_child", 2), ("call_parent", 2)}
    parents = engine.versions("call_parent")
    assert [p["version"] for p in parents] == [1, 2]
    assert parents[1]["dependencies"] == {"call_child": engine.versions("call_child")[1]["id"]}
    assert "call_child" in parents[1]["comment"]
    case = engine.start_case("call_parent", {}, CLERK)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)
    assert open_task(engine, case.id, "hand_over")["name"] == "发放新证书"


# ---------------------------------------------------------------------------- conformance and fuzzing

def test_miwg_reference_set_is_present():
    assert len(list(MIWG.glob("*.bpmn"))) >= 20, f"the BPMN MIWG reference models are missing from {MIWG}"


@pytest.mark.parametrize("path", sorted(MIWG.glob("*.bpmn")), ids=lambda p: p.name)
def test_miwg_reference_models_are_deployed_or_refused_with_reasons(engine, path):
    try:
        engine.deploy([(path.name, path.read_bytes())], "designer")
    except DeploymentRejected as err:
        assert err.problems
        for problem in err.problems:
            assert problem.file == path.name
            assert problem.message.strip() and "Traceback" not in problem.message
        assert engine.versions() == []
    else:
        assert engine.versions()


SEED = bpmn("parallel.bpmn")[0][1]
VALIDATOR: list[DeploymentValidator] = []


def _validator() -> DeploymentValidator:
    if not VALIDATOR:
        from handlers.registry import default_registry
        from tests.operators import TEST_REGISTRY

        VALIDATOR.append(DeploymentValidator(default_registry().merged(TEST_REGISTRY), lambda pid: None))
    return VALIDATOR[0]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "attribute", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "attribute":  # into an attribute value: ids and references are looked up
            spots = [m.end() for m in re.finditer(rb'="', data)] or [0]
            at = spots[at % len(spots)]
            data[at:at] = draw(st.sampled_from([b"'", b'\\"', b"]", b"[", b" ", b"x", b"&lt;"]))
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from([b"<", b">", b"&", b'"', b"'", b"/", b"=", b"\x00", b"\xff",
                                                b"<!DOCTYPE x>", b"<bpmn:task/>", b"]]>", b"&amp;"]))
        else:
            data = data[:at]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_files_never_crash_the_validator(content):
    result = _validator().validate([("fuzz.bpmn", content)])
    for problem in result.problems:
        assert problem.file and problem.message
    if not result.problems:
        assert result.processes
