"""Small BPMN diagrams built in tests: one element per line, so a problem's line is easy to find."""
from __future__ import annotations

import re
import textwrap
from xml.sax.saxutils import escape


def definitions(body: str, pid: str = "p", *, executable: bool = True, before: str = "") -> bytes:
    """A BPMN file with one process around `body`; `before` goes at definitions level."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
        '    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
        f'    id="defs_{pid}" targetNamespace="http://onewindow.example/test">\n'
        + textwrap.dedent(before)
        + f'  <bpmn:process id="{pid}" name="测试流程" isExecutable="{"true" if executable else "false"}">\n'
        + textwrap.dedent(body).strip() + "\n"
        + "  </bpmn:process>\n</bpmn:definitions>\n"
    ).encode("utf-8")


def chain(*nodes: str) -> str:
    """start → each node (an element with an id, one line each) → end."""
    ids = ["start", *(re.search(r'id="([^"]+)"', n).group(1) for n in nodes), "end"]
    lines = ['<bpmn:startEvent id="start"/>']
    for i, node in enumerate(nodes):
        lines.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{ids[i]}" targetRef="{ids[i + 1]}"/>')
        lines.append(node)
    lines.append(f'<bpmn:sequenceFlow id="f{len(nodes)}" sourceRef="{ids[-2]}" targetRef="end"/>')
    lines.append('<bpmn:endEvent id="end"/>')
    return "\n".join(lines)


def script_task(script: str, task_id: str = "calc") -> str:
    return f'<bpmn:scriptTask id="{task_id}" name="计算"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'


def gateway(condition: str, gateway_id: str = "decide") -> str:
    """start → exclusive gateway → (condition) user task `yes` → end, else → user task `no` → end."""
    return "\n".join([
        '<bpmn:startEvent id="start"/>',
        f'<bpmn:sequenceFlow id="f_in" sourceRef="start" targetRef="{gateway_id}"/>',
        f'<bpmn:exclusiveGateway id="{gateway_id}" default="f_no"/>',
        f'<bpmn:sequenceFlow id="f_yes" sourceRef="{gateway_id}" targetRef="yes">'
        f"<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>",
        f'<bpmn:sequenceFlow id="f_no" sourceRef="{gateway_id}" targetRef="no"/>',
        '<bpmn:userTask id="yes" name="是"/>',
        '<bpmn:userTask id="no" name="否"/>',
        '<bpmn:sequenceFlow id="f_yes_end" sourceRef="yes" targetRef="end"/>',
        '<bpmn:sequenceFlow id="f_no_end" sourceRef="no" targetRef="end"/>',
        '<bpmn:endEvent id="end"/>',
    ])


def service_task(operator: str, *params: tuple[str, str, str], task_id: str = "svc") -> str:
    ps = "".join(f'<spiffworkflow:parameter id="{i}" type="{t}" value="{v}"/>' for i, t, v in params)
    return (f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="result">'
            f'<spiffworkflow:parameters>{ps}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
            f'</bpmn:extensionElements></bpmn:serviceTask>')


def user_task(task_id: str = "review", name: str = "审核", **properties: str) -> str:
    props = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in properties.items())
    ext = (f"<bpmn:extensionElements><spiffworkflow:properties>{props}</spiffworkflow:properties>"
           f"</bpmn:extensionElements>") if props else ""
    return f'<bpmn:userTask id="{task_id}" name="{name}">{ext}</bpmn:userTask>'


def call_activity(called: str, task_id: str = "call") -> str:
    return f'<bpmn:callActivity id="{task_id}" calledElement="{called}"/>'


def line_of(content: bytes, needle: str) -> int:
    return content[: content.index(needle.encode())].count(b"\n") + 1
