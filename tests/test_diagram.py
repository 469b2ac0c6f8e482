"""The server-side BPMN diagram renderer (webapp/diagram.py): no database, no Flask.

The conformance half draws every diagram of the BPMN MIWG reference models (../shared/conformance/
miwg-reference, or $ONEWINDOW_SHARED/conformance/miwg-reference) and checks that every DI shape and
edge is in the SVG. The rest pins down marks, escaping, broken input and the secure parser.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from webapp.diagram import MAX_INPUT_BYTES, NO_DI_MESSAGE, list_diagrams, render_svg

MAIN = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONEWINDOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")
MIWG = SHARED / "conformance" / "miwg-reference"
SVG = "{http://www.w3.org/2000/svg}"
GENERAL = MAIN / "processes" / "general_registration.bpmn"


def _svg(text: str) -> etree._Element:
    assert isinstance(text, str)
    root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == f"{SVG}svg"
    return root


def _drawn(root: etree._Element) -> Counter[str]:
    return Counter(el.get("data-element-id") for el in root.iter() if el.get("data-element-id") is not None)


def _di_refs(bpmn: bytes, diagram_id: str) -> Counter[str]:
    doc = etree.fromstring(bpmn, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    diagram = next(d for d in doc.iter("{*}BPMNDiagram") if d.get("id") == diagram_id)
    return Counter(el.get("bpmnElement") for el in diagram.iter("{*}BPMNShape", "{*}BPMNEdge")
                   if el.get("bpmnElement"))


def _reference_cases() -> list:
    files = sorted(MIWG.glob("*.bpmn")) if MIWG.is_dir() else []
    if not files:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"no MIWG reference models in {MIWG}"))]
    cases = []
    for path in files:
        for number, diagram in enumerate(list_diagrams(path.read_bytes()), 1):
            cases.append(pytest.param(path, diagram["id"], id=f"{path.stem}#{number}"))
    return cases


# ------------------------------------------------------------------ conformance: MIWG reference models

@pytest.mark.parametrize(("path", "diagram_id"), _reference_cases())
def test_reference_model_every_di_shape_and_edge_is_drawn(path: Path, diagram_id: str) -> None:
    bpmn = path.read_bytes()
    root = _svg(render_svg(bpmn, diagram_id=diagram_id))

    expected = _di_refs(bpmn, diagram_id)
    assert expected, "a reference diagram without DI would test nothing"
    assert _drawn(root) == expected  # each DI shape and edge exactly once, by its bpmnElement

    x, y, w, h = (float(v) for v in root.get("viewBox").split())
    assert all(math.isfinite(v) for v in (x, y, w, h)) and w > 0 and h > 0
    for el in root.iter():
        if el.get("data-element-id") is not None:
            classes = el.get("class").split()
            assert classes[0] in ("shape", "edge"), classes
            title = el.find(f"{SVG}title")
            assert title is not None and title.text, el.get("data-element-id")
            if classes[0] == "shape":  # drawn where the DI puts it
                assert any(child.tag != f"{SVG}title" for child in el)


def test_reference_models_draw_the_elements_they_are_about() -> None:
    if not (MIWG / "B.2.0.bpmn").exists():
        pytest.skip(f"no MIWG reference models in {MIWG}")
    root = _svg(render_svg((MIWG / "B.2.0.bpmn").read_bytes()))
    classes = Counter(c for el in root.iter() if el.get("data-element-id") for c in el.get("class").split())
    for kind in ("pool", "lane", "user-task", "service-task", "send-task", "receive-task", "call-activity",
                 "sub-process", "expanded", "collapsed", "boundary-event", "start-event", "end-event",
                 "intermediate-catch-event", "intermediate-throw-event", "exclusive-gateway", "parallel-gateway",
                 "inclusive-gateway", "event-based-gateway", "data-object", "data-store", "text-annotation",
                 "group", "sequence-flow", "message-flow", "association"):
        assert classes[kind] > 0, kind
    icons = {c for el in root.iter() if (el.get("class") or "").startswith("icon ") for c in el.get("class").split()}
    for glyph in ("message", "timer", "error", "escalation", "signal", "conditional", "link", "terminate"):
        assert glyph in icons, glyph


def test_a_file_with_several_diagrams_draws_each() -> None:
    if not (MIWG / "C.4.0.bpmn").exists():
        pytest.skip(f"no MIWG reference models in {MIWG}")
    bpmn = (MIWG / "C.4.0.bpmn").read_bytes()
    diagrams = list_diagrams(bpmn)
    assert len(diagrams) == 4 and diagrams[0]["element_type"] == "collaboration"
    first = render_svg(bpmn)  # without a choice: the first diagram
    assert _drawn(_svg(first)) == _di_refs(bpmn, diagrams[0]["id"])
    with pytest.raises(ValueError, match="找不到流程图"):
        render_svg(bpmn, diagram_id="no_such_diagram")


# ------------------------------------------------------------------ our own process, with marks

def test_general_registration_with_marks() -> None:
    bpmn = GENERAL.read_bytes()
    marks = {"start": "done", "flow_start_accept": "done", "accept": "done", "review": "active",
             "join": "waiting", "promise_date": "incident"}
    root = _svg(render_svg(bpmn, process_id="general_registration", marks=marks))
    assert _drawn(root) == _di_refs(bpmn, "diagram_general_registration")

    by_id = {el.get("data-element-id"): el for el in root.iter() if el.get("data-element-id")}
    for element_id, mark in marks.items():
        assert f"mark-{mark}" in by_id[element_id].get("class").split(), element_id
        assert by_id[element_id].get("data-mark") == mark
    assert by_id["accept"].get("class").split()[:3] == ["shape", "task", "user-task"]
    assert by_id["promise_date"].get("class").split()[:3] == ["shape", "task", "service-task"]
    assert by_id["flow_start_accept"].get("class").split()[:2] == ["edge", "sequence-flow"]
    assert by_id["decision"].get("class").split()[:3] == ["shape", "gateway", "exclusive-gateway"]
    assert "mark-done" not in by_id["register"].get("class")
    assert by_id["review"].findtext(f"{SVG}title") == "审核（进行中）"

    style = root.findtext(f"{SVG}style")
    for mark in ("done", "active", "waiting", "incident"):
        assert f".mark-{mark} .outline" in style
    legend = root.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    assert {t.text for t in legend.iter(f"{SVG}text")} == {"已完成", "进行中", "等待中", "异常"}

    # names are written, lanes along their side, and the Chinese font is asked for
    texts = "".join(root.itertext())
    for name in ("窗口受理", "审核", "登簿", "计算承诺办结日", "审核通过？", "不予登记"):
        assert name in texts
    assert "Noto Sans CJK SC" in root.get("font-family")
    assert "rotate(-90" in etree.tostring(by_id["window_clerk"], encoding="unicode")


def test_without_marks_there_is_no_legend_and_labels_can_be_left_out() -> None:
    bpmn = GENERAL.read_bytes()
    root = _svg(render_svg(bpmn))
    assert render_svg(bpmn, process_id="no_such_process") == render_svg(bpmn)  # falls back to the first diagram
    assert root.find(f"{SVG}g[@class='legend']") is None
    bare = _svg(render_svg(bpmn, labels=False))
    assert not [t for t in bare.iter(f"{SVG}text")]
    assert _drawn(bare) == _drawn(root)


def test_unknown_mark_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="未知的标记"):
        render_svg(GENERAL.read_bytes(), marks={"accept": "finished"})


# ------------------------------------------------------------------ hand-made diagrams

HEAD = ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="d" targetNamespace="t">')


def _doc(process: str, shapes: str = "", *, doctype: str = "") -> str:
    di = (f'<bpmndi:BPMNDiagram id="dia"><bpmndi:BPMNPlane id="pl" bpmnElement="p">{shapes}'
          '</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>') if shapes else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}{HEAD}<bpmn:process id="p">{process}</bpmn:process>'
            f'{di}</bpmn:definitions>')


def _shape(ref: str, x: object = 100, y: object = 100, w: object = 100, h: object = 80, extra: str = "") -> str:
    return (f'<bpmndi:BPMNShape id="{ref}_di" bpmnElement="{ref}" {extra}>'
            f'<dc:Bounds x="{x}" y="{y}" width="{w}" height="{h}"/></bpmndi:BPMNShape>')


def test_names_are_escaped_not_injected() -> None:
    evil = '<script>alert(1)</script>" onload="alert(2)&amp;'
    attr = evil.replace("&amp;", "&amp;amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    bpmn = _doc(f'<bpmn:userTask id="t" name="{attr}"/><bpmn:startEvent id="s" name="{attr}"/>',
                _shape("t") + _shape("s", 20, 120, 36, 36))
    svg = render_svg(bpmn, marks={'t"><script>x</script>': "done"})
    root = _svg(svg)
    assert "<script" not in svg
    assert not [el for el in root.iter() if etree.QName(el).localname == "script"]
    assert not [el for el in root.iter() if el.get("onload") is not None]
    task = next(el for el in root.iter() if el.get("data-element-id") == "t")
    assert task.findtext(f"{SVG}title") == '<script>alert(1)</script>" onload="alert(2)&amp;'


def test_no_di_gives_the_placeholder() -> None:
    root = _svg(render_svg(_doc('<bpmn:startEvent id="s"/>')))
    assert NO_DI_MESSAGE in "".join(root.itertext())
    assert "no-di" in root.get("class")
    empty_plane = _doc('<bpmn:startEvent id="s"/>').replace(
        "</bpmn:process>", '</bpmn:process><bpmndi:BPMNDiagram id="x"><bpmndi:BPMNPlane id="y" bpmnElement="p"/>'
        "</bpmndi:BPMNDiagram>")
    assert NO_DI_MESSAGE in render_svg(empty_plane)


@pytest.mark.parametrize("bad", [
    b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'><bpmn:process>",
    b"not xml at all",
    b"",
    "<a><b></a>",
])
def test_malformed_xml_is_a_clear_value_error(bad: bytes | str) -> None:
    with pytest.raises(ValueError, match="XML"):
        render_svg(bad)


def test_other_documents_and_oversized_input_are_refused() -> None:
    with pytest.raises(ValueError, match="不是 BPMN 2.0 文件"):
        render_svg(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(ValueError, match="过大"):
        render_svg(b" " * (MAX_INPUT_BYTES + 1))
    with pytest.raises(TypeError):
        render_svg(123)  # type: ignore[arg-type]


def test_entities_are_not_resolved() -> None:
    secret = Path("/etc/hostname")
    leaked = secret.read_text().strip() if secret.exists() else ""
    doctype = (f'<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file://{secret}">'
               '<!ENTITY big "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA">]>')
    in_text = _doc('<bpmn:textAnnotation id="t"><bpmn:text>x&xxe;y&big;z</bpmn:text></bpmn:textAnnotation>',
                   _shape("t"), doctype=doctype)
    svg = render_svg(in_text)
    assert "AAAAAAAAAA" not in svg
    assert not leaked or leaked not in svg
    in_attribute = _doc('<bpmn:task id="t" name="x&xxe;y"/>', _shape("t"), doctype=doctype)
    try:  # libxml2 refuses external entities in attributes outright; either way nothing leaks
        svg = render_svg(in_attribute)
    except ValueError as exc:
        assert "XML" in str(exc)
    else:
        assert not leaked or leaked not in svg


def test_str_input_with_an_encoding_declaration() -> None:
    text = GENERAL.read_text(encoding="utf-8")
    assert text.startswith("<?xml")
    assert render_svg(text) == render_svg(text.encode("utf-8"))


def test_broken_di_is_drawn_anyway() -> None:
    process = (
        '<bpmn:task id="ok" name="正常"/>'
        '<bpmn:task id="nobounds" name="无位置"/>'
        '<bpmn:task id="nan" name="坏坐标"/>'
        '<bpmn:task id="huge" name="巨大坐标"/>'
        '<bpmn:task id="negative" name="负尺寸"/>'
        '<bpmn:choreographyWidget id="odd" name="未知类型"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="ok" targetRef="nobounds"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="ok" targetRef="nan"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="ok" targetRef="huge"/>'
    )
    shapes = (
        _shape("ok")
        + '<bpmndi:BPMNShape id="nobounds_di" bpmnElement="nobounds"/>'
        + _shape("nan", "NaN", "abc", "inf", 80)
        + _shape("huge", "1e308", "-1e300", "1e200", 80)
        + _shape("negative", 10, 10, -100, 80)
        + _shape("odd", 300, 100)
        + _shape("ghost", 450, 100)  # a DI shape whose element is not in the model
        + '<bpmndi:BPMNShape id="anon_di"><dc:Bounds x="600" y="100" width="50" height="50"/></bpmndi:BPMNShape>'
        + '<bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"/>'  # no waypoints: drawn between the shapes
        + '<bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="1" y="NaN"/></bpmndi:BPMNEdge>'
        + '<bpmndi:BPMNEdge id="f3_di" bpmnElement="f3"><di:waypoint x="200" y="140"/>'
          '<di:waypoint x="9e99" y="140"/><di:waypoint x="300" y="140"/></bpmndi:BPMNEdge>'
        + '<bpmndi:BPMNEdge id="ghost_edge_di" bpmnElement="missing_flow"><di:waypoint x="0" y="0"/>'
          '<di:waypoint x="50" y="50"/></bpmndi:BPMNEdge>'
    )
    root = _svg(render_svg(_doc(process, shapes)))
    drawn = _drawn(root)
    assert set(drawn) == {"ok", "nobounds", "nan", "huge", "negative", "odd", "ghost", "f1", "f2", "f3",
                          "missing_flow"}
    assert all(n == 1 for n in drawn.values())
    x, y, w, h = (float(v) for v in root.get("viewBox").split())
    assert all(math.isfinite(v) for v in (x, y, w, h))
    assert w < 5000 and h < 5000  # nonsense coordinates did not blow the picture up
    by_id = {el.get("data-element-id"): el for el in root.iter() if el.get("data-element-id")}
    assert "missing-element" in by_id["ghost"].get("class")
    assert "unknown" in by_id["odd"].get("class")
    assert by_id["ghost"].findtext(f"{SVG}title") == "缺少元素：ghost"
    assert by_id["f1"].find(f"{SVG}path") is not None  # fell back to the shapes' positions
    assert "缺少位置信息" in "".join(root.itertext())


def test_long_chinese_names_wrap_inside_the_task() -> None:
    name = "核对不动产权籍调查成果并确认宗地界址与面积无误后提交审核"
    bpmn = _doc(f'<bpmn:userTask id="t" name="{name}"/>', _shape("t"))
    root = _svg(render_svg(bpmn))
    task = next(el for el in root.iter() if el.get("data-element-id") == "t")
    lines = [t.text for t in task.iter(f"{SVG}tspan")]
    assert len(lines) >= 3
    assert max(len(line) for line in lines) <= 10  # 100 px wide task: no line runs out of the box
    assert task.findtext(f"{SVG}title") == name


def test_element_kinds_and_markers() -> None:
    process = (
        '<bpmn:subProcess id="sp" triggeredByEvent="true"><bpmn:startEvent id="inner" isInterrupting="false">'
        '<bpmn:timerEventDefinition/></bpmn:startEvent></bpmn:subProcess>'
        '<bpmn:subProcess id="collapsed_sp"><bpmn:multiInstanceLoopCharacteristics isSequential="true"/>'
        '</bpmn:subProcess>'
        '<bpmn:transaction id="tx"/>'
        '<bpmn:callActivity id="call" calledElement="other_process"/>'
        '<bpmn:scriptTask id="script"><bpmn:standardLoopCharacteristics/></bpmn:scriptTask>'
        '<bpmn:manualTask id="manual"/><bpmn:businessRuleTask id="rule"/>'
        '<bpmn:boundaryEvent id="b" attachedToRef="script" cancelActivity="false">'
        '<bpmn:escalationEventDefinition/></bpmn:boundaryEvent>'
        '<bpmn:intermediateThrowEvent id="link"><bpmn:linkEventDefinition/></bpmn:intermediateThrowEvent>'
        '<bpmn:endEvent id="cancel_end"><bpmn:cancelEventDefinition/></bpmn:endEvent>'
        '<bpmn:endEvent id="comp_end"><bpmn:compensateEventDefinition/></bpmn:endEvent>'
        '<bpmn:complexGateway id="cx"/><bpmn:exclusiveGateway id="nox"/>'
        '<bpmn:dataObjectReference id="dor" dataObjectRef="do"/><bpmn:dataObject id="do" isCollection="true"/>'
    )
    shapes = (
        _shape("sp", 0, 0, 300, 200, 'isExpanded="true"') + _shape("inner", 20, 20, 36, 36)
        + _shape("collapsed_sp", 400, 0) + _shape("tx", 550, 0) + _shape("call", 700, 0)
        + _shape("script", 0, 300) + _shape("manual", 150, 300) + _shape("rule", 300, 300)
        + _shape("b", 40, 362, 36, 36) + _shape("link", 450, 300, 36, 36) + _shape("cancel_end", 500, 300, 36, 36)
        + _shape("comp_end", 550, 300, 36, 36) + _shape("cx", 600, 300, 50, 50)
        + _shape("nox", 700, 300, 50, 50, 'isMarkerVisible="false"') + _shape("dor", 800, 300, 36, 50)
    )
    root = _svg(render_svg(_doc(process, shapes)))
    by_id = {el.get("data-element-id"): el for el in root.iter() if el.get("data-element-id")}

    def dashed(element_id: str) -> bool:
        return any(el.get("stroke-dasharray") for el in by_id[element_id].iter() if el.get("class") == "outline")

    assert "expanded" in by_id["sp"].get("class") and dashed("sp")  # event sub-process: dotted border
    assert dashed("inner") and dashed("b")  # non-interrupting events
    assert "collapsed" in by_id["collapsed_sp"].get("class")
    assert len(by_id["tx"].xpath("svg:rect[@class='outline' or @class='ring']",
                                 namespaces={"svg": SVG[1:-1]})) == 2  # transaction: double border
    outline = by_id["call"].find(f"{SVG}rect[@class='outline']")
    assert float(outline.get("stroke-width")) >= 3  # call activity: thick border
    for element_id in ("collapsed_sp", "call", "script"):  # markers at the bottom
        assert any("marker" in (el.get("class") or "") for el in by_id[element_id].iter()), element_id
    for element_id, icon in (("script", "script-task-icon"), ("manual", "manual-task-icon"),
                             ("rule", "business-rule-task-icon"), ("inner", "timer"), ("b", "escalation"),
                             ("link", "link"), ("cancel_end", "cancel"), ("comp_end", "compensate")):
        assert any(icon in (el.get("class") or "").split() for el in by_id[element_id].iter()), element_id
    assert by_id["cx"].find(f"{SVG}g[@class='icon']") is not None
    assert len(by_id["nox"].find(f"{SVG}g[@class='icon']")) == 0  # isMarkerVisible="false": no X
    assert len(by_id["dor"].findall(f"{SVG}line")) == 3  # collection marker
