"""BPMN diagrams drawn on the server: BPMN DI → SVG, with a case's progress marked on it.

`render_svg(bpmn_xml, process_id=…, marks={element_id: "done" | "active" | "waiting" | "incident"})`
returns an SVG document (text) that the case page inlines and ``GET /cases/{id}/diagram.svg`` serves.
It is a pure function of its arguments: lxml only, no Flask, no database, no JavaScript.

Why on the server and not with bpmn-js in the browser: the case page must work without a
JavaScript bundle, print the same way, and show exactly the version the case is pinned to.

What the SVG offers the web page:
- every BPMNShape and BPMNEdge of the chosen diagram is one ``<g>`` carrying
  ``data-element-id="<bpmnElement>"``, ``data-element-type="<userTask …>"`` and a class such as
  ``shape task user-task`` or ``edge sequence-flow`` (plus ``mark-done`` … when marked), with a
  ``<title>`` holding the element's name for hover; the main outline of a shape has class
  ``outline`` and the line of an edge class ``line``, so CSS can restyle them;
- external labels (events, gateways, data, flows) are drawn last, in ``<g class="label"
  data-label-for="…">``, so no line covers a name — and ``data-element-id`` stays one per DI element;
- a ``<style>`` scoped to ``svg.bpmn-diagram`` colours the marks; a legend appears when marks are given.

Robustness (a case page must never fail because of its diagram): the parser does not resolve
entities, load DTDs or touch the network; input is capped at `MAX_INPUT_BYTES`; shapes without
usable bounds (missing, non-numeric, infinite, beyond ±`COORD_LIMIT`) are laid out in a row under
the diagram; DI that references a missing element or an unknown element type is drawn as a
generic dashed rectangle; a file without DI yields a small SVG saying so. Malformed XML, a
non-BPMN document or an unknown ``diagram_id`` raise ``ValueError`` with a readable message.
All text goes through lxml's serializer, so names cannot inject markup.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

__all__ = [
    "COORD_LIMIT",
    "MARK_KINDS",
    "MAX_INPUT_BYTES",
    "NO_DI_MESSAGE",
    "list_diagrams",
    "render_svg",
]

SVG_NS = "http://www.w3.org/2000/svg"
OMG_COLOR_NS = "http://www.omg.org/spec/BPMN/non-normative/color/1.0"
BIOC_NS = "http://bpmn.io/schema/bpmn/biocolor/1.0"

MAX_INPUT_BYTES = 8 * 1024 * 1024
"""Largest BPMN input accepted (the biggest real diagrams we know are a few hundred kB)."""
COORD_LIMIT = 1_000_000.0
"""Coordinates or sizes beyond this are treated as missing (a broken exporter, not a diagram)."""
MARK_KINDS = ("done", "active", "waiting", "incident")
NO_DI_MESSAGE = "此流程图没有图形信息（BPMN DI）"
FONT_FAMILY = '"Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif'

_MARK_LABELS = {"done": "已完成", "active": "进行中", "waiting": "等待中", "incident": "异常"}
_MARK_COLORS = {  # (stroke, fill tint)
    "done": ("#2e7d32", "#e3f2e1"),
    "active": ("#1565c0", "#e3eefb"),
    "waiting": ("#e69500", "#fff4dc"),
    "incident": ("#c62828", "#fde8e8"),
}
INK = "#1f1f1f"
PAPER = "#ffffff"
MARGIN = 20.0
FONT_SIZE = 12.0
LABEL_FONT_SIZE = 11.0
LINE_HEIGHT = 1.25
MAX_NAME_CHARS = 400

TASK_TAGS = {
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "adHocSubProcess", "transaction",
}
SUBPROCESS_TAGS = {"subProcess", "adHocSubProcess", "transaction"}
EVENT_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "implicitThrowEvent",
}
GATEWAY_TAGS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
DATA_OBJECT_TAGS = {"dataObject", "dataObjectReference", "dataInput", "dataOutput"}
DATA_STORE_TAGS = {"dataStore", "dataStoreReference"}
CONVERSATION_TAGS = {"conversation", "subConversation", "callConversation"}
CHOREOGRAPHY_TAGS = {"choreographyTask", "subChoreography", "callChoreography"}
EXTERNAL_LABEL_TAGS = EVENT_TAGS | GATEWAY_TAGS | DATA_OBJECT_TAGS | DATA_STORE_TAGS | CONVERSATION_TAGS

_TYPE_NAMES = {
    "participant": "池", "lane": "泳道", "task": "任务", "userTask": "人工任务", "serviceTask": "服务任务",
    "scriptTask": "脚本任务", "manualTask": "手工任务", "sendTask": "发送任务", "receiveTask": "接收任务",
    "businessRuleTask": "业务规则任务", "callActivity": "调用活动", "subProcess": "子流程",
    "adHocSubProcess": "自由子流程", "transaction": "事务", "startEvent": "开始事件", "endEvent": "结束事件",
    "intermediateCatchEvent": "中间捕获事件", "intermediateThrowEvent": "中间抛出事件",
    "boundaryEvent": "边界事件", "exclusiveGateway": "排他网关", "parallelGateway": "并行网关",
    "inclusiveGateway": "包容网关", "eventBasedGateway": "事件网关", "complexGateway": "复杂网关",
    "dataObject": "数据对象", "dataObjectReference": "数据对象", "dataInput": "数据输入",
    "dataOutput": "数据输出", "dataStore": "数据存储", "dataStoreReference": "数据存储",
    "textAnnotation": "注释", "group": "分组", "sequenceFlow": "顺序流", "messageFlow": "消息流",
    "association": "关联", "dataInputAssociation": "数据关联", "dataOutputAssociation": "数据关联",
}

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,24}|rgba?\(\s*[0-9.%]+\s*(,\s*[0-9.%]+\s*){2,3}\))$")

_STYLE = (
    "svg.bpmn-diagram text{font-family:" + FONT_FAMILY + ";fill:" + INK + "}"
    "svg.bpmn-diagram .edge .hit{pointer-events:stroke}"
    + "".join(
        f"svg.bpmn-diagram .mark-{kind} .outline{{stroke:{stroke};fill:{tint};stroke-width:{width}px}}"
        f"svg.bpmn-diagram .mark-{kind} .ring{{stroke:{stroke}}}"
        f"svg.bpmn-diagram .mark-{kind} .line{{stroke:{stroke};stroke-width:{line}px}}"
        f"svg.bpmn-diagram .mark-{kind} .arrow{{fill:{stroke};stroke:{stroke}}}"
        f"svg.bpmn-diagram .mark-{kind} .arrow-open{{stroke:{stroke}}}"
        for kind, (stroke, tint), width, line in (
            ("done", _MARK_COLORS["done"], 2.5, 2.5),
            ("active", _MARK_COLORS["active"], 4.5, 3),
            ("waiting", _MARK_COLORS["waiting"], 4, 3),
            ("incident", _MARK_COLORS["incident"], 4.5, 3),
        )
    )
    + "svg.bpmn-diagram .mark-done.event.end-event .outline{stroke-width:4px}"
)


# --------------------------------------------------------------------------- parsing

def _parse(bpmn_xml: bytes | str) -> etree._Element:
    if isinstance(bpmn_xml, str):
        if len(bpmn_xml) > MAX_INPUT_BYTES:
            raise ValueError(f"BPMN 文件过大（超过 {MAX_INPUT_BYTES // (1024 * 1024)} MB），不予绘制")
        # lxml refuses str input with an encoding declaration; the text is already decoded.
        data = _XML_DECL.sub("", bpmn_xml, count=1).encode("utf-8")
    elif isinstance(bpmn_xml, bytes | bytearray | memoryview):
        data = bytes(bpmn_xml)
    else:
        raise TypeError(f"bpmn_xml must be bytes or str, not {type(bpmn_xml).__name__}")
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"BPMN 文件过大（超过 {MAX_INPUT_BYTES // (1024 * 1024)} MB），不予绘制")
    if not data.strip():
        raise ValueError("BPMN 文件为空，不是格式正确的 XML")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        where = f"第 {exc.lineno} 行" if exc.lineno else "开头"
        raise ValueError(f"BPMN 文件不是格式正确的 XML（{where}）：{exc.msg}") from exc
    if root is None or etree.QName(root).localname != "definitions":
        found = etree.QName(root).localname if root is not None else "无"
        raise ValueError(f"不是 BPMN 2.0 文件：根元素应为 definitions，实为 {found}")
    return root


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _clean(text: str | None, limit: int = MAX_NAME_CHARS) -> str:
    if not text:
        return ""
    text = _NOT_XML_CHARS.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or abs(number) > COORD_LIMIT:
        return None
    return number


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def contains(self, other: _Box) -> bool:
        return (self.x - 1 <= other.x and self.y - 1 <= other.y
                and other.right <= self.right + 1 and other.bottom <= self.bottom + 1)


def _bounds(parent: etree._Element | None, *, allow_empty: bool = False) -> _Box | None:
    if parent is None:
        return None
    el = parent.find("{*}Bounds")
    if el is None:
        return None
    x, y, w, h = (_num(el.get(k)) for k in ("x", "y", "width", "height"))
    if x is None or y is None or w is None or h is None or w < 0 or h < 0:
        return None
    if not allow_empty and (w == 0 or h == 0):
        return None
    return _Box(x, y, w, h)


@dataclass
class _Item:
    kind: str  # "shape" | "edge"
    di: etree._Element
    ref: str  # bpmnElement ("" when absent)
    sem: etree._Element | None
    tag: str  # semantic local name, "" when the element is missing
    box: _Box | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    label_box: _Box | None = None
    placed: bool = True


class _Model:
    """The semantic side of a definitions document: elements by id."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        ns = etree.QName(root).namespace
        self.by_id: dict[str, etree._Element] = {}
        for el in root.iter(f"{{{ns}}}*" if ns else "*"):
            ident = el.get("id")
            if ident and ident not in self.by_id and isinstance(el.tag, str):
                self.by_id[ident] = el

    def get(self, ident: str | None) -> etree._Element | None:
        return self.by_id.get(ident) if ident else None

    def name_of(self, el: etree._Element | None) -> str:
        if el is None:
            return ""
        tag = _local(el)
        if tag == "textAnnotation":
            text = el.find("{*}text")
            return _clean("".join(text.itertext()) if text is not None else el.get("name"))
        if tag == "group":
            value = self.get(el.get("categoryValueRef"))
            return _clean(value.get("value") if value is not None else el.get("name"))
        name = el.get("name")
        # (lxml elements are falsy when childless: never write `found or el`)
        for kind, attr in (("dataObjectReference", "dataObjectRef"), ("dataStoreReference", "dataStoreRef"),
                           ("participant", "processRef")):
            target = self.get(el.get(attr)) if tag == kind and not name else None
            if target is not None:
                name = target.get("name")
        name = _clean(name)
        state = el.find("{*}dataState")
        if tag in DATA_OBJECT_TAGS and state is not None and state.get("name"):
            state_text = f"[{_clean(state.get('name'), 80)}]"
            if state_text not in name:  # some tools already write the state into the name
                name = f"{name}\n{state_text}".strip()
        return name


# --------------------------------------------------------------------------- diagram choice

def list_diagrams(bpmn_xml: bytes | str) -> list[dict[str, str]]:
    """The BPMNDiagrams of a file: ``[{"id", "name", "element", "element_type"}]`` in file order.

    A file may hold several (one per pool, or one per collapsed sub-process); pass an id to
    `render_svg(diagram_id=…)` to draw one of them.
    """
    root = _parse(bpmn_xml)
    model = _Model(root)
    result = []
    for diagram in root.iter("{*}BPMNDiagram"):
        plane = diagram.find("{*}BPMNPlane")
        element = plane.get("bpmnElement", "") if plane is not None else ""
        sem = model.get(element)
        result.append({
            "id": _clean(diagram.get("id"), 200),
            "name": _clean(diagram.get("name"), 200),
            "element": _clean(element, 200),
            "element_type": _local(sem) if sem is not None else "",
        })
    return result


def _choose_plane(root: etree._Element, model: _Model, process_id: str | None,
                  diagram_id: str | None) -> tuple[etree._Element | None, etree._Element | None]:
    diagrams = [d for d in root.iter("{*}BPMNDiagram") if d.find("{*}BPMNPlane") is not None]
    if diagram_id is not None:
        for d in diagrams:
            if d.get("id") == diagram_id:
                return d, d.find("{*}BPMNPlane")
        raise ValueError(f"找不到流程图 {_clean(diagram_id, 200)!r}（BPMNDiagram id）")
    if not diagrams:
        return None, None
    if process_id:
        def shows(plane: etree._Element) -> bool:
            ref = plane.get("bpmnElement")
            if ref == process_id:
                return True
            sem = model.get(ref)
            if sem is not None and _local(sem) == "collaboration":
                if any(p.get("processRef") == process_id for p in sem.iter("{*}participant")):
                    return True
            for shape in plane.iter("{*}BPMNShape"):
                el = model.get(shape.get("bpmnElement"))
                if el is not None and _local(el) == "participant" and el.get("processRef") == process_id:
                    return True
            return False

        for d in diagrams:
            if shows(d.find("{*}BPMNPlane")):
                return d, d.find("{*}BPMNPlane")
    return diagrams[0], diagrams[0].find("{*}BPMNPlane")


# --------------------------------------------------------------------------- text

_NARROW = dict.fromkeys("il.,:;'|!`", 0.28) | dict.fromkeys("fjrt()[]{}/\\-", 0.36) | {" ": 0.23, "I": 0.3,
                                                                                      "s": 0.47, "z": 0.48}
_WIDE = dict.fromkeys("mMW@%", 0.9) | dict.fromkeys("wNOQ", 0.78)


def _char_width(ch: str) -> float:
    """Approximate advance in em (measured on Noto Sans CJK SC): enough to wrap names without font metrics."""
    if unicodedata.east_asian_width(ch) in "WF":
        return 1.0
    if ch in _NARROW:
        return _NARROW[ch]
    if ch in _WIDE:
        return _WIDE[ch]
    if ch.isupper():
        return 0.65
    if ch.isdigit():
        return 0.56
    return 0.57


def _width(text: str, size: float) -> float:
    return sum(_char_width(c) for c in text) * size


_NO_LINE_START = set("，。、；：？！）》」』”’】〕…,.;:?!)]}%")
_NO_LINE_END = set("（《「『“‘【〔([{")


def _tokens(paragraph: str) -> list[tuple[str, bool]]:
    """Break opportunities: (piece, preceded by a space). CJK breaks between characters."""
    tokens: list[tuple[str, bool]] = []
    word = ""
    space = False
    pending_open = ""

    def push(piece: str, sp: bool) -> None:
        nonlocal pending_open
        piece = pending_open + piece
        pending_open = ""
        if tokens and piece and piece[0] in _NO_LINE_START and not sp:
            prev, prev_sp = tokens[-1]
            tokens[-1] = (prev + piece, prev_sp)
        else:
            tokens.append((piece, sp))

    for ch in paragraph:
        if ch == " ":
            if word:
                push(word, space)
                word = ""
            space = True
            continue
        if unicodedata.east_asian_width(ch) in "WF":
            if word:
                push(word, space)
                word = ""
                space = False
            if ch in _NO_LINE_END:
                pending_open += ch
                continue
            push(ch, space)
            space = False
        else:
            word += ch
    if word or pending_open:
        push(word, space)
    return tokens


def _wrap(text: str, max_width: float, size: float, max_lines: int | None = None) -> list[str]:
    max_width = max(max_width, size * 2)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for piece, sp in _tokens(paragraph):
            candidate = (line + (" " if sp and line else "") + piece) if line else piece
            if _width(candidate, size) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            while _width(piece, size) > max_width and len(piece) > 1:  # a word longer than the line
                cut = 1
                while cut < len(piece) and _width(piece[: cut + 1], size) <= max_width:
                    cut += 1
                lines.append(piece[:cut])
                piece = piece[cut:]
            line = piece
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    if max_lines is not None and len(lines) > max(max_lines, 1):
        lines = lines[: max(max_lines, 1)]
        last = lines[-1]
        while last and _width(last + "…", size) > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return lines


# --------------------------------------------------------------------------- svg helpers

def _f(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _sub(parent: etree._Element, tag: str, attrs: Mapping[str, object] | None = None,
         text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{SVG_NS}}}{tag}")
    for key, value in (attrs or {}).items():
        if value is None:
            continue
        el.set(key, _f(value) if isinstance(value, float) else str(value))
    if text is not None:
        el.text = text
    return el


def _points(pts: list[tuple[float, float]]) -> str:
    return " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() if name else "unknown"


def _color(value: str | None) -> str | None:
    if value and _COLOR.match(value.strip()):
        return value.strip()
    return None


class _Extent:
    def __init__(self) -> None:
        self.x1 = self.y1 = math.inf
        self.x2 = self.y2 = -math.inf

    def add(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.x1, self.y1 = min(self.x1, x1, x2), min(self.y1, y1, y2)
        self.x2, self.y2 = max(self.x2, x1, x2), max(self.y2, y1, y2)

    def add_box(self, box: _Box) -> None:
        self.add(box.x, box.y, box.right, box.bottom)

    @property
    def empty(self) -> bool:
        return not math.isfinite(self.x1)


# --------------------------------------------------------------------------- renderer

class _Renderer:
    def __init__(self, model: _Model, plane: etree._Element, marks: Mapping[str, str], labels: bool) -> None:
        self.model = model
        self.plane = plane
        self.marks = marks
        self.labels = labels
        self.extent = _Extent()
        self.items: list[_Item] = []
        self.shape_by_ref: dict[str, _Item] = {}
        self.item_by_di_id: dict[str, _Item] = {}
        for di in plane.iter("{*}BPMNShape", "{*}BPMNEdge"):
            ref = _clean(di.get("bpmnElement"), 500)
            sem = model.get(ref)
            item = _Item("shape" if _local(di) == "BPMNShape" else "edge", di, ref, sem,
                         _local(sem) if sem is not None else "")
            if item.kind == "shape":
                item.box = _bounds(di)
            else:
                for wp in di.findall("{*}waypoint"):
                    x, y = _num(wp.get("x")), _num(wp.get("y"))
                    if x is not None and y is not None:
                        item.points.append((x, y))
            item.label_box = _bounds(di.find("{*}BPMNLabel"), allow_empty=True)
            self.items.append(item)
            if item.kind == "shape" and ref and ref not in self.shape_by_ref:
                self.shape_by_ref[ref] = item
            if di.get("id"):
                self.item_by_di_id[di.get("id")] = item
        self.plane_refs = {item.ref for item in self.items}

    # -- layout fixes -------------------------------------------------------

    def place_unplaced(self) -> None:
        for item in self.items:
            if item.kind == "shape" and item.box is not None:
                self.extent.add_box(item.box)
            for x, y in item.points:
                self.extent.add(x, y, x, y)
        missing = [i for i in self.items if i.kind == "shape" and i.box is None]
        if missing:
            x0 = 0.0 if self.extent.empty else self.extent.x1
            y0 = 0.0 if self.extent.empty else self.extent.y2 + 50
            x = x0
            for item in missing:
                w, h = self._default_size(item.tag)
                item.box = _Box(x, y0, w, h)
                item.placed = False
                x += w + 30
            self.extent.add(x0, y0, x, y0 + 80)
        for item in self.items:
            if item.kind == "edge" and len(item.points) < 2:
                item.points = self._fallback_points(item)

    @staticmethod
    def _default_size(tag: str) -> tuple[float, float]:
        if tag in EVENT_TAGS:
            return 36.0, 36.0
        if tag in GATEWAY_TAGS:
            return 50.0, 50.0
        if tag in DATA_OBJECT_TAGS:
            return 36.0, 50.0
        if tag in DATA_STORE_TAGS:
            return 50.0, 50.0
        if tag in ("participant", "lane"):
            return 400.0, 120.0
        return 100.0, 80.0

    def _end_box(self, di_ref: str | None, sem_ref: str | None) -> _Box | None:
        item = self.item_by_di_id.get(di_ref or "")
        if item is None and sem_ref:
            item = self.shape_by_ref.get(sem_ref)
        return item.box if item is not None and item.kind == "shape" else None

    def _fallback_points(self, item: _Item) -> list[tuple[float, float]]:
        sem = item.sem
        src = tgt = None
        if sem is not None:
            src, tgt = sem.get("sourceRef"), sem.get("targetRef")
            if item.tag in ("dataInputAssociation", "dataOutputAssociation"):
                s_el, t_el = sem.find("{*}sourceRef"), sem.find("{*}targetRef")
                src = (s_el.text or "").strip() if s_el is not None else None
                tgt = (t_el.text or "").strip() if t_el is not None else None
                owner = sem.getparent()
                if item.tag == "dataInputAssociation" and owner is not None:
                    tgt = owner.get("id")
                elif owner is not None:
                    src = owner.get("id")
        a = self._end_box(item.di.get("sourceElement"), src)
        b = self._end_box(item.di.get("targetElement"), tgt)
        if a is None or b is None:
            return item.points if len(item.points) >= 2 else []
        return [_clip(a, b.cx, b.cy), _clip(b, a.cx, a.cy)]

    # -- main ---------------------------------------------------------------

    def render(self, diagram_name: str) -> etree._Element:
        self.place_unplaced()
        layers = {n: [] for n in range(6)}
        for index, item in enumerate(self.items):
            layers[self._layer(item)].append((index, item))
        layers[0].sort(key=lambda p: -(p[1].box.w * p[1].box.h))
        layers[1].sort(key=lambda p: -(p[1].box.w * p[1].box.h))
        layers[2].sort(key=lambda p: -(p[1].box.w * p[1].box.h))

        body = etree.Element(f"{{{SVG_NS}}}g", {"class": "diagram"})
        label_layer = etree.Element(f"{{{SVG_NS}}}g", {"class": "labels"})
        self.label_layer = label_layer
        for n in range(6):
            for _, item in layers[n]:
                self._draw(body, item)
        if any(not i.placed for i in self.items):
            first = min((i.box for i in self.items if not i.placed), key=lambda b: (b.y, b.x))
            _sub(label_layer, "text", {"x": first.x, "y": first.y - 10, "font-size": LABEL_FONT_SIZE,
                                       "class": "note", "fill": "#8a1c1c", "stroke": PAPER, "stroke-width": 3,
                                       "paint-order": "stroke"},
                 "以下元素缺少位置信息（BPMN DI 无有效 Bounds）：")
            self.extent.add(first.x, first.y - 24, first.x + 300, first.y)

        svg = self._root(diagram_name)
        legend = self._legend() if self.marks else None
        if legend is not None:
            svg.append(legend)
        svg.append(body)
        svg.append(label_layer)
        ext = self.extent
        x1, y1, x2, y2 = ext.x1 - MARGIN, ext.y1 - MARGIN, ext.x2 + MARGIN, ext.y2 + MARGIN
        width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        svg.set("viewBox", f"{_f(x1)} {_f(y1)} {_f(width)} {_f(height)}")
        svg.set("width", _f(math.ceil(width)))
        svg.set("height", _f(math.ceil(height)))
        return svg

    def _root(self, diagram_name: str) -> etree._Element:
        svg = etree.Element(f"{{{SVG_NS}}}svg", nsmap={None: SVG_NS})
        svg.set("class", "bpmn-diagram")
        svg.set("role", "img")
        svg.set("font-family", FONT_FAMILY)
        if diagram_name:
            svg.set("aria-label", diagram_name)
            _sub(svg, "title", None, diagram_name)
        _sub(svg, "style", None, _STYLE)
        return svg

    def _legend(self) -> etree._Element | None:
        kinds = [k for k in MARK_KINDS if k != "incident" or "incident" in self.marks.values()]
        if self.extent.empty:
            return None
        x, y = self.extent.x1, self.extent.y1 - 34
        g = etree.Element(f"{{{SVG_NS}}}g", {"class": "legend"})
        for kind in kinds:
            swatch = _sub(g, "g", {"class": f"mark-{kind}"})
            _sub(swatch, "rect", {"x": x, "y": y, "width": 22.0, "height": 14.0, "rx": 3.0, "class": "outline",
                                  "fill": PAPER, "stroke": INK, "stroke-width": 1.5})
            label = _MARK_LABELS[kind]
            _sub(g, "text", {"x": x + 28, "y": y + 11, "font-size": FONT_SIZE}, label)
            x += 28 + _width(label, FONT_SIZE) + 22
        self.extent.add(self.extent.x1, y - 4, x, y)
        return g

    def _layer(self, item: _Item) -> int:
        tag = item.tag
        if item.kind == "edge":
            return 4
        if tag == "participant":
            return 0
        if tag == "lane":
            return 1
        if tag in TASK_TAGS and self._expanded(item):
            return 2
        if tag == "boundaryEvent":
            return 5
        return 3

    def _expanded(self, item: _Item) -> bool:
        if item.tag not in TASK_TAGS or item.tag not in SUBPROCESS_TAGS | {"callActivity"}:
            return False
        flag = item.di.get("isExpanded")
        if flag is not None:
            return flag.strip().lower() == "true"
        sem = item.sem
        if sem is not None and item.tag in SUBPROCESS_TAGS:
            for child in sem:
                if child.get("id") in self.plane_refs:
                    return True
        return False

    # -- dispatch -----------------------------------------------------------

    def _draw(self, parent: etree._Element, item: _Item) -> None:
        tag = item.tag
        mark = self.marks.get(item.ref) if item.ref else None
        if item.kind == "edge":
            category = {"sequenceFlow": "sequence-flow", "messageFlow": "message-flow",
                        "association": "association", "dataInputAssociation": "data-association",
                        "dataOutputAssociation": "data-association",
                        "conversationLink": "conversation-link"}.get(tag, "unknown")
            classes = ["edge", category]
        else:
            if tag == "participant":
                category = "pool"
            elif tag == "lane":
                category = "lane"
            elif tag in TASK_TAGS:
                category = "task"
            elif tag in EVENT_TAGS:
                category = "event"
            elif tag in GATEWAY_TAGS:
                category = "gateway"
            elif tag in DATA_OBJECT_TAGS:
                category = "data-object"
            elif tag in DATA_STORE_TAGS:
                category = "data-store"
            elif tag == "textAnnotation":
                category = "annotation"
            elif tag == "group":
                category = "group"
            elif tag in CONVERSATION_TAGS:
                category = "conversation"
            elif tag in CHOREOGRAPHY_TAGS:
                category = "choreography"
            else:
                category = "unknown"
            classes = ["shape", category]
        kebab = _kebab(tag)
        if kebab not in classes and tag:
            classes.append(kebab)
        if item.sem is None:
            classes.append("missing-element")
        if item.kind == "shape" and tag in TASK_TAGS:
            classes.append("expanded" if self._expanded(item) else "collapsed")
        if mark:
            classes.append(f"mark-{mark}")
        attrs = {"class": " ".join(classes)}
        if item.ref:
            attrs["data-element-id"] = item.ref
        if tag:
            attrs["data-element-type"] = tag
        if mark:
            attrs["data-mark"] = mark
        g = _sub(parent, "g", attrs)
        name = self.model.name_of(item.sem)
        _sub(g, "title", None, self._title(item, name, mark))

        fill = _color(item.di.get(f"{{{OMG_COLOR_NS}}}background-color")) or _color(
            item.di.get(f"{{{BIOC_NS}}}fill"))
        stroke = _color(item.di.get(f"{{{OMG_COLOR_NS}}}border-color")) or _color(
            item.di.get(f"{{{BIOC_NS}}}stroke")) or INK
        style = _Style(fill or PAPER, stroke, fill is not None)

        if item.kind == "edge":
            self._edge(g, item, name, style)
            return
        box = item.box
        assert box is not None
        if item.sem is None or category == "unknown":
            self._generic(g, item, name, style)
        elif category == "pool":
            self._pool(g, item, name, style)
        elif category == "lane":
            self._lane(g, item, name, style)
        elif category == "task":
            self._activity(g, item, name, style)
        elif category == "event":
            self._event(g, item, style)
        elif category == "gateway":
            self._gateway(g, item, style)
        elif category == "data-object":
            self._data_object(g, item, style)
        elif category == "data-store":
            self._data_store(g, item, style)
        elif category == "annotation":
            self._annotation(g, item, name, style)
        elif category == "group":
            self._group(g, item, style)
        elif category == "conversation":
            self._conversation(g, item, style)
        else:  # choreography: a rounded box with its name is a fair summary
            _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "rx": 10.0,
                             "class": "outline", "fill": style.fill, "stroke": style.stroke, "stroke-width": 1.5})
            self._inside_text(g, name, box, FONT_SIZE)
        self.extent.add_box(box)
        if tag in EXTERNAL_LABEL_TAGS or (tag == "group" and item.label_box is not None):
            self._external_label(item, name)

    def _title(self, item: _Item, name: str, mark: str | None) -> str:
        if item.sem is None:
            text = f"缺少元素：{item.ref or '（未指定 bpmnElement）'}"
        else:
            text = name.replace("\n", " ") or f"{_TYPE_NAMES.get(item.tag, item.tag)} {item.ref}"
        if mark:
            text += f"（{_MARK_LABELS[mark]}）"
        return text

    # -- text ---------------------------------------------------------------

    def _text(self, parent: etree._Element, lines: list[str], x: float, cy: float, size: float,
              anchor: str = "middle", cls: str = "name", transform: str | None = None,
              halo: bool = False) -> None:
        if not lines:
            return
        lh = size * LINE_HEIGHT
        first = cy - (len(lines) - 1) * lh / 2 + size * 0.36
        attrs: dict[str, object] = {"x": x, "y": first, "font-size": size, "text-anchor": anchor, "class": cls,
                                    "transform": transform}
        if halo:  # a white outline under the glyphs keeps labels readable where lines cross them
            attrs.update({"stroke": PAPER, "stroke-width": 3, "stroke-linejoin": "round", "paint-order": "stroke"})
        text = _sub(parent, "text", attrs)
        for i, line in enumerate(lines):
            _sub(text, "tspan", {"x": x, "y": first + i * lh}, line)

    def _inside_text(self, g: etree._Element, name: str, box: _Box, size: float,
                     top: float = 4.0, bottom: float = 4.0, side: float = 4.0, icon: bool = False) -> None:
        """A name centred in a box: shrink the font (down to 9) before cutting it with "…", and move it
        below the type icon in the top-left corner when the two would overlap."""
        if not (self.labels and name):
            return
        width = box.w - 2 * side
        sizes = [s for s in (size, size - 1, size - 2, size - 3) if s >= 9] or [size]
        choice = None
        for sz in sizes:
            lh = sz * LINE_HEIGHT
            for area_top in ((top, 22.0) if icon else (top,)):
                avail_h = max(box.h - area_top - bottom, sz)
                max_lines = max(int(avail_h // lh), 1)
                lines = _wrap(name, width, sz, None)
                if len(lines) > max_lines:
                    continue
                cy = box.y + area_top + avail_h / 2
                if icon and area_top == top and _hits_icon(lines, box, cy, sz):
                    continue
                choice = (lines, cy, sz)
                break
            if choice:
                break
        if choice is None:
            sz = sizes[-1]
            avail_h = max(box.h - top - bottom, sz)
            lines = _wrap(name, width, sz, max(int(avail_h // (sz * LINE_HEIGHT)), 1))
            choice = (lines, box.y + top + avail_h / 2, sz)
        lines, cy, sz = choice
        self._text(g, lines, box.cx, cy, sz)

    def _external_label(self, item: _Item, name: str) -> None:
        if not (self.labels and name):
            return
        size = LABEL_FONT_SIZE
        lh = size * LINE_HEIGHT
        lb = item.label_box
        if lb is not None and (lb.w > 0 or lb.h > 0):
            lines = _wrap(name, max(lb.w * 1.15 + 6, 40), size, 6)
            cx, cy = lb.cx, lb.cy
            if lb.w == 0 and lb.h == 0:
                cy = lb.y + len(lines) * lh / 2
        elif item.kind == "edge":
            if len(item.points) < 2:
                return
            (mx, my), (dx, dy) = _midpoint(item.points)
            lines = _wrap(name, 110, size, 4)
            if abs(dy) > abs(dx):  # beside a vertical line, not across it
                half = max(_width(line, size) for line in lines) / 2 if lines else 0
                cx, cy = mx + 6 + half, my
            else:
                cx, cy = mx, my - 4 - len(lines) * lh / 2
        else:
            box = item.box
            lines = _wrap(name, max(box.w + 40, 90), size, 5)
            cx, cy = box.cx, box.bottom + 5 + len(lines) * lh / 2
        if not lines:
            return
        g = _sub(self.label_layer, "g", {"class": "label", "data-label-for": item.ref or None})
        _sub(g, "title", None, name.replace("\n", " "))
        self._text(g, lines, cx, cy, size, halo=True)
        half = max(_width(line, size) for line in lines) / 2
        self.extent.add(cx - half, cy - len(lines) * lh / 2, cx + half, cy + len(lines) * lh / 2)

    # -- shapes -------------------------------------------------------------

    def _generic(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        box = item.box
        _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "rx": 4.0, "class": "outline",
                         "fill": style.fill, "stroke": "#777777", "stroke-width": 1.5, "stroke-dasharray": "6 4"})
        if item.sem is None:
            text = f"? {item.ref}" if item.ref else "?"
        else:
            text = name or f"<{item.tag}>"
        self._inside_text(g, text, box, LABEL_FONT_SIZE)

    def _pool(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        box = item.box
        _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "class": "outline",
                         "fill": style.fill, "stroke": style.stroke, "stroke-width": 1.5})
        horizontal = _is_horizontal(item)
        band = 30.0
        lanes = [i.box for i in self.items if i.tag == "lane" and i.box is not None and box.contains(i.box)]
        if lanes:
            gap = min(b.x - box.x for b in lanes) if horizontal else min(b.y - box.y for b in lanes)
            if 8 <= gap <= 80:
                band = gap
        band = min(band, box.w if horizontal else box.h)
        if horizontal:
            _sub(g, "line", {"x1": box.x + band, "y1": box.y, "x2": box.x + band, "y2": box.bottom,
                             "stroke": style.stroke, "stroke-width": 1.5})
        else:
            _sub(g, "line", {"x1": box.x, "y1": box.y + band, "x2": box.right, "y2": box.y + band,
                             "stroke": style.stroke, "stroke-width": 1.5})
        self._band_text(g, name, box, band, horizontal)
        sem = item.sem
        if sem is not None and sem.find("{*}participantMultiplicity") is not None:
            _marker_parallel(g, box.cx, box.bottom - 9, style.stroke)

    def _lane(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        box = item.box
        _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "class": "outline",
                         "fill": style.fill if style.custom_fill else "none", "stroke": style.stroke,
                         "stroke-width": 1.2})
        self._band_text(g, name, box, 30.0, _is_horizontal(item))

    def _band_text(self, g: etree._Element, name: str, box: _Box, band: float, horizontal: bool) -> None:
        if not (self.labels and name):
            return
        size = FONT_SIZE
        max_lines = max(int(band // (size * LINE_HEIGHT)), 1)
        if horizontal:
            lines = _wrap(name, box.h - 10, size, max_lines)
            cx, cy = box.x + band / 2, box.cy
            self._text(g, lines, cx, cy, size, cls="name band", transform=f"rotate(-90 {_f(cx)} {_f(cy)})")
        else:
            lines = _wrap(name, box.w - 10, size, max_lines)
            self._text(g, lines, box.cx, box.y + band / 2, size, cls="name band")

    def _activity(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        box = item.box
        sem = item.sem
        tag = item.tag
        expanded = self._expanded(item)
        rx = min(10.0, box.w / 5, box.h / 5)
        attrs = {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "rx": rx, "class": "outline",
                 "fill": style.fill, "stroke": style.stroke, "stroke-width": 1.5}
        if tag == "callActivity":
            attrs["stroke-width"] = 4.0
        if sem.get("triggeredByEvent") == "true":
            attrs["stroke-dasharray"] = "1.5 3"
            attrs["stroke-linecap"] = "round"
        _sub(g, "rect", attrs)
        if tag == "transaction" and box.w > 8 and box.h > 8:
            _sub(g, "rect", {"x": box.x + 3, "y": box.y + 3, "width": box.w - 6, "height": box.h - 6,
                             "rx": max(rx - 3, 0.0), "class": "ring", "fill": "none", "stroke": style.stroke,
                             "stroke-width": 1.5})
        icon_tag = tag
        calls_task = False  # a call activity calling a global task looks like that task, without the + marker
        if tag == "callActivity":
            called = self.model.get(sem.get("calledElement"))
            called_tag = _local(called) if called is not None else ""
            calls_task = called_tag.startswith("global")
            icon_tag = {"globalUserTask": "userTask", "globalManualTask": "manualTask",
                        "globalScriptTask": "scriptTask",
                        "globalBusinessRuleTask": "businessRuleTask"}.get(called_tag, "")
        _task_icon(g, icon_tag, box.x + 6, box.y + 6, style)

        markers: list[str] = []
        loop = sem.find("{*}multiInstanceLoopCharacteristics")
        if loop is not None:
            markers.append("mi-sequential" if loop.get("isSequential") == "true" else "mi-parallel")
        elif sem.find("{*}standardLoopCharacteristics") is not None:
            markers.append("loop")
        if sem.get("isForCompensation") == "true":
            markers.append("compensation")
        if not expanded and (tag in SUBPROCESS_TAGS or (tag == "callActivity" and not calls_task)):
            markers.append("collapsed")
        if tag == "adHocSubProcess":
            markers.append("adhoc")
        marker_y = box.bottom - 10
        spacing = 16.0
        x = box.cx - (len(markers) - 1) * spacing / 2
        for marker in markers:
            _MARKERS[marker](g, x, marker_y, style.stroke)
            x += spacing

        if not (self.labels and name):
            return
        if expanded:
            size = FONT_SIZE
            lines = _wrap(name, box.w - 16, size, 2)
            lh = size * LINE_HEIGHT
            self._text(g, lines, box.x + 8, box.y + 8 + len(lines) * lh / 2, size, anchor="start")
        else:
            has_icon = icon_tag not in ("", "task")
            self._inside_text(g, name, box, FONT_SIZE, top=4.0, bottom=18.0 if markers else 4.0, icon=has_icon)

    def _event(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        sem = item.sem
        tag = item.tag
        r = max(min(box.w, box.h) / 2, 1.0)
        cx, cy = box.cx, box.cy
        dashed = (tag == "boundaryEvent" and sem.get("cancelActivity", "true") == "false") or (
            tag == "startEvent" and sem.get("isInterrupting", "true") == "false")
        width = 1.5
        if tag == "endEvent":
            width = max(min(4.0, r / 4), 1.5)
        attrs = {"cx": cx, "cy": cy, "r": r, "class": "outline", "fill": style.fill, "stroke": style.stroke,
                 "stroke-width": width}
        if dashed:
            attrs["stroke-dasharray"] = "5.5 3"
        _sub(g, "circle", attrs)
        if tag in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "implicitThrowEvent"):
            inner = {"cx": cx, "cy": cy, "r": max(r - 3, 0.5), "class": "ring", "fill": "none",
                     "stroke": style.stroke, "stroke-width": 1.2}
            if dashed:
                inner["stroke-dasharray"] = "5.5 3"
            _sub(g, "circle", inner)
        kinds = []
        for child in sem:
            local = _local(child)
            if local.endswith("EventDefinition"):
                kinds.append(local[: -len("EventDefinition")])
        for ref in sem.findall("{*}eventDefinitionRef"):
            target = self.model.get((ref.text or "").strip())
            if target is not None and _local(target).endswith("EventDefinition"):
                kinds.append(_local(target)[: -len("EventDefinition")])
        if not kinds:
            return
        if len(kinds) > 1:
            kind = "parallelMultiple" if sem.get("parallelMultiple") == "true" else "multiple"
        else:
            kind = kinds[0]
        throw = tag in ("endEvent", "intermediateThrowEvent", "implicitThrowEvent")
        glyph = _GLYPHS.get(kind)
        if glyph is None:
            return
        scale = r / 18
        holder = _sub(g, "g", {"class": f"icon {_kebab(kind)}",
                               "transform": f"translate({_f(cx)} {_f(cy)}) scale({_f(scale)})"})
        glyph(holder, throw, style)

    def _gateway(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        sem = item.sem
        tag = item.tag
        cx, cy = box.cx, box.cy
        _sub(g, "polygon", {"points": _points([(cx, box.y), (box.right, cy), (cx, box.bottom), (box.x, cy)]),
                            "class": "outline", "fill": style.fill, "stroke": style.stroke,
                            "stroke-width": 1.5, "stroke-linejoin": "round"})
        scale = min(box.w, box.h) / 50
        holder = _sub(g, "g", {"class": "icon", "transform": f"translate({_f(cx)} {_f(cy)}) scale({_f(scale)})"})
        ink = style.stroke
        if tag == "exclusiveGateway":
            # BPMN DI: isMarkerVisible defaults to false, so the X is drawn only when the DI asks for it
            # (as bpmn-js and the MIWG reference images do).
            if (item.di.get("isMarkerVisible") or "false").strip().lower() == "true":
                _sub(holder, "polygon", {"points": _points(_cross(10.5, 1.9, 45)), "fill": ink, "stroke": "none"})
        elif tag == "parallelGateway":
            _sub(holder, "polygon", {"points": _points(_cross(13, 2, 0)), "fill": ink, "stroke": "none"})
        elif tag == "inclusiveGateway":
            _sub(holder, "circle", {"cx": 0.0, "cy": 0.0, "r": 10.5, "fill": "none", "stroke": ink,
                                    "stroke-width": 3})
        elif tag == "complexGateway":
            for angle in (0, 45, 90, 135):
                rad = math.radians(angle)
                dx, dy = 12 * math.cos(rad), 12 * math.sin(rad)
                _sub(holder, "line", {"x1": -dx, "y1": -dy, "x2": dx, "y2": dy, "stroke": ink, "stroke-width": 3.5})
        elif tag == "eventBasedGateway":
            instantiate = sem.get("instantiate") == "true"
            parallel = sem.get("eventGatewayType") == "Parallel"
            _sub(holder, "circle", {"cx": 0.0, "cy": 0.0, "r": 12.5, "fill": "none", "stroke": ink,
                                    "stroke-width": 1.2})
            if not instantiate:
                _sub(holder, "circle", {"cx": 0.0, "cy": 0.0, "r": 10.0, "fill": "none", "stroke": ink,
                                        "stroke-width": 1.2})
            if parallel:
                _sub(holder, "polygon", {"points": _points(_cross(7, 2, 0)), "fill": "none", "stroke": ink,
                                         "stroke-width": 1.2})
            else:
                _sub(holder, "polygon", {"points": _points(_regular(5, 6.5)), "fill": "none", "stroke": ink,
                                         "stroke-width": 1.4, "stroke-linejoin": "round"})

    def _data_object(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        fold = min(12.0, box.w / 3, box.h / 3)
        x, y, r, b = box.x, box.y, box.right, box.bottom
        _sub(g, "path", {"d": f"M{_f(x)},{_f(y)} H{_f(r - fold)} L{_f(r)},{_f(y + fold)} V{_f(b)} H{_f(x)} Z",
                         "class": "outline", "fill": style.fill, "stroke": style.stroke, "stroke-width": 1.5,
                         "stroke-linejoin": "round"})
        _sub(g, "path", {"d": f"M{_f(r - fold)},{_f(y)} V{_f(y + fold)} H{_f(r)}", "fill": "none",
                         "stroke": style.stroke, "stroke-width": 1.2})
        sem = item.sem
        target = self.model.get(sem.get("dataObjectRef")) if item.tag == "dataObjectReference" else None
        if sem.get("isCollection") == "true" or (target is not None and target.get("isCollection") == "true"):
            _marker_parallel(g, box.cx, b - 8, style.stroke)
        if item.tag in ("dataInput", "dataOutput"):
            ax, ay = x + 4, y + 4
            pts = [(ax, ay + 3), (ax + 6, ay + 3), (ax + 6, ay), (ax + 11, ay + 5), (ax + 6, ay + 10),
                   (ax + 6, ay + 7), (ax, ay + 7)]
            fill = style.stroke if item.tag == "dataOutput" else PAPER
            _sub(g, "polygon", {"points": _points(pts), "fill": fill, "stroke": style.stroke, "stroke-width": 1})

    def _data_store(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        x, y, w, h = box.x, box.y, box.w, box.h
        ry = min(h * 0.12, 8.0)
        rx = w / 2
        arc = f"A{_f(rx)},{_f(ry)} 0 0 0 {_f(x + w)},"
        d = (f"M{_f(x)},{_f(y + ry)} V{_f(y + h - ry)} {arc}{_f(y + h - ry)} V{_f(y + ry)} "
             f"A{_f(rx)},{_f(ry)} 0 0 0 {_f(x)},{_f(y + ry)} Z")
        _sub(g, "path", {"d": d, "class": "outline", "fill": style.fill, "stroke": style.stroke, "stroke-width": 1.5})
        for k in (1, 2):
            yy = y + ry + k * ry * 0.9
            _sub(g, "path", {"d": f"M{_f(x)},{_f(yy - ry)} {arc}{_f(yy - ry)}", "fill": "none",
                             "stroke": style.stroke, "stroke-width": 1.2})

    def _annotation(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        box = item.box
        arm = min(15.0, box.w)
        _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "fill": style.fill,
                         "fill-opacity": 1 if style.custom_fill else 0, "class": "area", "stroke": "none"})
        _sub(g, "path", {"d": f"M{_f(box.x + arm)},{_f(box.y)} H{_f(box.x)} V{_f(box.bottom)} H{_f(box.x + arm)}",
                         "class": "outline", "fill": "none", "stroke": style.stroke, "stroke-width": 1.5})
        if not (self.labels and name):
            return
        size = LABEL_FONT_SIZE
        lh = size * LINE_HEIGHT
        max_lines = max(int((box.h - 4) // lh), 1)
        lines = _wrap(name, box.w - 10, size, max(max_lines, 1))
        if len(lines) * lh > box.h:  # a short box: let the text run below it rather than vanish
            lines = _wrap(name, max(box.w - 10, 120), size, 6)
        self._text(g, lines, box.x + 5, box.cy, size, anchor="start")

    def _group(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        _sub(g, "rect", {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "rx": 10.0, "class": "outline",
                         "fill": "none", "stroke": style.stroke if style.stroke != INK else "#555555",
                         "stroke-width": 1.5, "stroke-dasharray": "10 4 2 4"})
        name = self.model.name_of(item.sem)
        if self.labels and name and item.label_box is None:
            lines = _wrap(name, box.w - 20, LABEL_FONT_SIZE, 2)
            self._text(g, lines, box.cx, box.y + 6 + len(lines) * LABEL_FONT_SIZE * LINE_HEIGHT / 2,
                       LABEL_FONT_SIZE)

    def _conversation(self, g: etree._Element, item: _Item, style: _Style) -> None:
        box = item.box
        qx = box.w / 4
        pts = [(box.x + qx, box.y), (box.right - qx, box.y), (box.right, box.cy), (box.right - qx, box.bottom),
               (box.x + qx, box.bottom), (box.x, box.cy)]
        width = 4.0 if item.tag == "callConversation" else 1.5
        _sub(g, "polygon", {"points": _points(pts), "class": "outline", "fill": style.fill, "stroke": style.stroke,
                            "stroke-width": width})
        if item.tag == "subConversation":
            _marker_collapsed(g, box.cx, box.bottom - 8, style.stroke)

    # -- edges --------------------------------------------------------------

    def _edge(self, g: etree._Element, item: _Item, name: str, style: _Style) -> None:
        pts = _dedupe(item.points)
        if len(pts) < 2:
            return
        for x, y in pts:
            self.extent.add(x, y, x, y)
        tag = item.tag
        ink = style.stroke
        d = "M" + " L".join(f"{_f(x)},{_f(y)}" for x, y in pts)
        _sub(g, "path", {"d": d, "class": "hit", "fill": "none", "stroke": "#000000", "stroke-opacity": 0,
                         "stroke-width": 10})
        line = {"d": d, "class": "line", "fill": "none", "stroke": ink, "stroke-width": 1.5,
                "stroke-linejoin": "round"}
        sem = item.sem
        if tag == "sequenceFlow":
            _sub(g, "path", line)
            _arrow(g, pts[-2], pts[-1], ink, filled=True)
            source = self.model.get(sem.get("sourceRef"))
            if source is not None and source.get("default") == item.ref:
                _default_slash(g, pts[0], pts[1], ink)
            elif (source is not None and _local(source) in TASK_TAGS
                  and sem.find("{*}conditionExpression") is not None):
                _condition_diamond(g, pts[0], pts[1], ink)
        elif tag == "messageFlow":
            line["stroke-dasharray"] = "8 5"
            _sub(g, "path", line)
            a, b = pts[0], pts[1]
            length = math.dist(a, b) or 1.0
            _sub(g, "circle", {"cx": a[0] + (b[0] - a[0]) / length * 4, "cy": a[1] + (b[1] - a[1]) / length * 4,
                               "r": 4.0, "class": "arrow-open", "fill": PAPER, "stroke": ink, "stroke-width": 1.2})
            _arrow(g, pts[-2], pts[-1], ink, filled=False)
            kind = item.di.get("messageVisibleKind")
            if kind in ("initiating", "non_initiating"):
                mx, my = _midpoint(pts)[0]
                env_fill = PAPER if kind == "initiating" else "#bbbbbb"
                _sub(g, "rect", {"x": mx - 10, "y": my - 7, "width": 20.0, "height": 14.0, "fill": env_fill,
                                 "stroke": ink, "stroke-width": 1.2, "class": "envelope"})
                _sub(g, "polyline", {"points": _points([(mx - 10, my - 7), (mx, my), (mx + 10, my - 7)]),
                                     "fill": "none", "stroke": ink, "stroke-width": 1.2})
        elif tag in ("association", "dataInputAssociation", "dataOutputAssociation"):
            line.update({"stroke-dasharray": "0.5 4.5", "stroke-linecap": "round", "stroke-width": 2})
            _sub(g, "path", line)
            direction = sem.get("associationDirection", "None") if tag == "association" else "One"
            if direction in ("One", "Both"):
                _open_arrow(g, pts[-2], pts[-1], ink)
            if direction == "Both":
                _open_arrow(g, pts[1], pts[0], ink)
        elif tag == "conversationLink":
            line["stroke-width"] = 4
            _sub(g, "path", line)
            _sub(g, "path", {"d": d, "fill": "none", "stroke": PAPER, "stroke-width": 1.5})
        elif self._touches_data(item):  # an edge without semantics to or from data: an association, as tools mean
            line.update({"stroke-dasharray": "0.5 4.5", "stroke-linecap": "round", "stroke-width": 2})
            _sub(g, "path", line)
        else:
            line.update({"stroke": "#777777", "stroke-dasharray": "6 4"})
            _sub(g, "path", line)
        self._external_label(item, name)

    def _touches_data(self, item: _Item) -> bool:
        for di_ref in (item.di.get("sourceElement"), item.di.get("targetElement")):
            end = self.item_by_di_id.get(di_ref or "")
            if end is not None and end.tag in DATA_OBJECT_TAGS | DATA_STORE_TAGS:
                return True
        return False


@dataclass
class _Style:
    fill: str
    stroke: str
    custom_fill: bool


def _is_horizontal(item: _Item) -> bool:
    flag = item.di.get("isHorizontal")
    if flag is not None:
        return flag.strip().lower() != "false"
    return item.box.w >= item.box.h


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for p in points:
        if not out or math.dist(out[-1], p) > 0.01:
            out.append(p)
    return out


def _midpoint(points: list[tuple[float, float]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The point halfway along a polyline, and the unit direction of the segment it lies on."""
    segments = list(zip(points, points[1:], strict=False))
    total = sum(math.dist(a, b) for a, b in segments)
    if total == 0:
        return points[0], (1.0, 0.0)
    walked = 0.0
    for a, b in segments:
        length = math.dist(a, b)
        if walked + length >= total / 2 and length > 0:
            t = (total / 2 - walked) / length
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t), _unit(a, b)
        walked += length
    return points[-1], _unit(points[-2], points[-1])


def _hits_icon(lines: list[str], box: _Box, cy: float, size: float) -> bool:
    """Would centred lines overlap the 16 px type icon drawn at the box's top-left corner?"""
    lh = size * LINE_HEIGHT
    top = cy - len(lines) * lh / 2
    for i, line in enumerate(lines):
        y1, y2 = top + i * lh, top + (i + 1) * lh
        left = box.cx - _width(line, size) / 2
        if y1 < box.y + 23 and y2 > box.y + 5 and left < box.x + 23:
            return True
    return False


def _clip(box: _Box, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from the box's centre towards (tx, ty) leaves the box."""
    dx, dy = tx - box.cx, ty - box.cy
    if dx == 0 and dy == 0:
        return box.cx, box.cy
    scale = min(box.w / 2 / abs(dx) if dx else math.inf, box.h / 2 / abs(dy) if dy else math.inf)
    return box.cx + dx * min(scale, 1.0), box.cy + dy * min(scale, 1.0)


def _unit(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    length = math.dist(a, b) or 1.0
    return (b[0] - a[0]) / length, (b[1] - a[1]) / length


def _arrow(g: etree._Element, a: tuple[float, float], b: tuple[float, float], ink: str, *, filled: bool) -> None:
    ux, uy = _unit(a, b)
    length, half = 11.0, 4.5
    bx, by = b[0] - ux * length, b[1] - uy * length
    pts = [b, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
    _sub(g, "polygon", {"points": _points(pts), "class": "arrow" if filled else "arrow-open",
                        "fill": ink if filled else PAPER, "stroke": ink, "stroke-width": 1.2,
                        "stroke-linejoin": "round"})


def _open_arrow(g: etree._Element, a: tuple[float, float], b: tuple[float, float], ink: str) -> None:
    ux, uy = _unit(a, b)
    length, half = 10.0, 5.0
    bx, by = b[0] - ux * length, b[1] - uy * length
    pts = [(bx - uy * half, by + ux * half), b, (bx + uy * half, by - ux * half)]
    _sub(g, "polyline", {"points": _points(pts), "class": "arrow-open", "fill": "none", "stroke": ink,
                         "stroke-width": 1.5, "stroke-linejoin": "round"})


def _default_slash(g: etree._Element, a: tuple[float, float], b: tuple[float, float], ink: str) -> None:
    ux, uy = _unit(a, b)
    cx, cy = a[0] + ux * 14, a[1] + uy * 14
    # a short stroke crossing the line at about 45°
    vx, vy = (ux - uy) * 0.7071, (uy + ux) * 0.7071
    _sub(g, "line", {"x1": cx - vx * 7, "y1": cy - vy * 7, "x2": cx + vx * 7, "y2": cy + vy * 7,
                     "class": "default-marker line", "stroke": ink, "stroke-width": 1.5})


def _condition_diamond(g: etree._Element, a: tuple[float, float], b: tuple[float, float], ink: str) -> None:
    ux, uy = _unit(a, b)
    half_len, half_w = 8.0, 5.0
    mid = (a[0] + ux * half_len, a[1] + uy * half_len)
    pts = [a, (mid[0] - uy * half_w, mid[1] + ux * half_w), (a[0] + ux * 2 * half_len, a[1] + uy * 2 * half_len),
           (mid[0] + uy * half_w, mid[1] - ux * half_w)]
    _sub(g, "polygon", {"points": _points(pts), "class": "arrow-open condition-marker", "fill": PAPER,
                        "stroke": ink, "stroke-width": 1.2})


def _cross(arm: float, half: float, angle: float) -> list[tuple[float, float]]:
    """A plus sign (arms `arm` long, `half` half-thick) rotated by `angle` degrees, around (0, 0)."""
    base = [(-half, -arm), (half, -arm), (half, -half), (arm, -half), (arm, half), (half, half), (half, arm),
            (-half, arm), (-half, half), (-arm, half), (-arm, -half), (-half, -half)]
    rad = math.radians(angle)
    c, s = math.cos(rad), math.sin(rad)
    return [(x * c - y * s, x * s + y * c) for x, y in base]


def _regular(n: int, r: float) -> list[tuple[float, float]]:
    return [(r * math.sin(2 * math.pi * k / n), -r * math.cos(2 * math.pi * k / n)) for k in range(n)]


# --------------------------------------------------------------------------- task icons and markers

def _task_icon(g: etree._Element, tag: str, ox: float, oy: float, style: _Style) -> None:
    ink = style.stroke
    if tag in ("", "task", "callActivity") or tag in SUBPROCESS_TAGS:
        return
    icon = _sub(g, "g", {"class": f"icon {_kebab(tag)}-icon", "transform": f"translate({_f(ox)} {_f(oy)})",
                         "stroke": ink, "stroke-width": 1.1, "stroke-linejoin": "round"})
    if tag == "userTask":
        _sub(icon, "path", {"d": "M1.5,15 C1.5,9.5 4.5,8.5 8,8.5 C11.5,8.5 14.5,9.5 14.5,15 Z", "fill": PAPER})
        _sub(icon, "circle", {"cx": 8.0, "cy": 5.0, "r": 3.4, "fill": PAPER})
        _sub(icon, "path", {"d": "M4.6,4.6 C6,2.2 10,2.2 11.4,4.6 C10,3.8 6,3.8 4.6,4.6 Z", "fill": ink})
    elif tag == "serviceTask":
        teeth = 8
        pts = []
        for k in range(teeth * 4):
            angle = 2 * math.pi * k / (teeth * 4)
            r = 7.6 if k % 4 in (0, 1) else 5.6
            pts.append((8 + r * math.cos(angle), 8 + r * math.sin(angle)))
        _sub(icon, "polygon", {"points": _points(pts), "fill": PAPER})
        _sub(icon, "circle", {"cx": 8.0, "cy": 8.0, "r": 2.4, "fill": PAPER})
    elif tag == "scriptTask":
        _sub(icon, "path", {"d": "M4,1 H14 C11.5,3.5 11.5,6 13,8 C14.5,10 14.5,12.5 12,15 H2 C4.5,12.5 4.5,10 3,8 "
                                 "C1.5,6 1.5,3.5 4,1 Z", "fill": PAPER})
        for y in (4.5, 8.0, 11.5):
            _sub(icon, "line", {"x1": 5.0, "y1": y, "x2": 11.0, "y2": y})
    elif tag == "manualTask":
        _sub(icon, "path", {"d": "M1,7.5 L5,3.5 H8 L6.5,6 H14.5 C15.6,6 15.6,8 14.5,8 H10 M10,8 H15 C16.1,8 16.1,10 "
                                 "15,10 H10 M10,10 H14.5 C15.6,10 15.6,12 14.5,12 H10 M10,12 H13 C14.1,12 14.1,14 "
                                 "13,14 H3 C1.8,14 1,13 1,12 Z", "fill": PAPER})
    elif tag in ("sendTask", "receiveTask"):
        filled = tag == "sendTask"
        _sub(icon, "rect", {"x": 1.0, "y": 3.0, "width": 15.0, "height": 10.5, "fill": ink if filled else PAPER})
        _sub(icon, "polyline", {"points": "1,3 8.5,9 16,3", "fill": "none", "stroke": PAPER if filled else ink})
    elif tag == "businessRuleTask":
        _sub(icon, "rect", {"x": 1.0, "y": 2.0, "width": 15.0, "height": 12.0, "fill": PAPER})
        _sub(icon, "rect", {"x": 1.0, "y": 2.0, "width": 15.0, "height": 3.5, "fill": "#8c8c8c"})
        _sub(icon, "line", {"x1": 1.0, "y1": 9.5, "x2": 16.0, "y2": 9.5})
        _sub(icon, "line", {"x1": 5.0, "y1": 5.5, "x2": 5.0, "y2": 14.0})


def _marker_parallel(g: etree._Element, x: float, y: float, ink: str) -> None:
    for dx in (-4.0, 0.0, 4.0):
        _sub(g, "line", {"x1": x + dx, "y1": y - 5, "x2": x + dx, "y2": y + 5, "stroke": ink, "stroke-width": 2,
                         "class": "marker"})


def _marker_sequential(g: etree._Element, x: float, y: float, ink: str) -> None:
    for dy in (-4.0, 0.0, 4.0):
        _sub(g, "line", {"x1": x - 5, "y1": y + dy, "x2": x + 5, "y2": y + dy, "stroke": ink, "stroke-width": 2,
                         "class": "marker"})


def _marker_loop(g: etree._Element, x: float, y: float, ink: str) -> None:
    _sub(g, "path", {"d": f"M{_f(x - 3.5)},{_f(y + 4.5)} A5.5,5.5 0 1 1 {_f(x + 3.5)},{_f(y + 4.5)}",
                     "fill": "none", "stroke": ink, "stroke-width": 1.5, "class": "marker"})
    _sub(g, "polyline", {"points": _points([(x - 7.5, y + 3), (x - 3.5, y + 4.5), (x - 3.5, y + 0.5)]),
                         "fill": "none", "stroke": ink, "stroke-width": 1.5, "class": "marker"})


def _marker_compensation(g: etree._Element, x: float, y: float, ink: str) -> None:
    for dx in (-6.0, 0.0):
        _sub(g, "polygon", {"points": _points([(x + dx, y), (x + dx + 6, y - 4.5), (x + dx + 6, y + 4.5)]),
                            "fill": "none", "stroke": ink, "stroke-width": 1.2, "class": "marker"})


def _marker_collapsed(g: etree._Element, x: float, y: float, ink: str) -> None:
    _sub(g, "rect", {"x": x - 6.5, "y": y - 6.5, "width": 13.0, "height": 13.0, "fill": PAPER, "stroke": ink,
                     "stroke-width": 1.2, "class": "marker"})
    _sub(g, "path", {"d": f"M{_f(x - 4)},{_f(y)} H{_f(x + 4)} M{_f(x)},{_f(y - 4)} V{_f(y + 4)}",
                     "stroke": ink, "stroke-width": 1.5, "class": "marker"})


def _marker_adhoc(g: etree._Element, x: float, y: float, ink: str) -> None:
    _sub(g, "path", {"d": f"M{_f(x - 7)},{_f(y + 1.5)} c2,-4 4.5,-4 7,-1.5 s5,2.5 7,-1.5", "fill": "none",
                     "stroke": ink, "stroke-width": 1.8, "class": "marker"})


_MARKERS = {
    "mi-parallel": _marker_parallel,
    "mi-sequential": _marker_sequential,
    "loop": _marker_loop,
    "compensation": _marker_compensation,
    "collapsed": _marker_collapsed,
    "adhoc": _marker_adhoc,
}


# --------------------------------------------------------------------------- event glyphs (r = 18 units)

def _glyph_paint(throw: bool, style: _Style) -> dict[str, object]:
    return {"fill": style.stroke if throw else style.fill, "stroke": style.stroke, "stroke-width": 1.4,
            "stroke-linejoin": "round"}


def _glyph_message(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "rect", {"x": -9.5, "y": -6.5, "width": 19.0, "height": 13.0, **_glyph_paint(throw, style)})
    _sub(h, "polyline", {"points": "-9.5,-6.5 0,0.5 9.5,-6.5", "fill": "none",
                         "stroke": style.fill if throw else style.stroke, "stroke-width": 1.4})


def _glyph_timer(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "circle", {"cx": 0.0, "cy": 0.0, "r": 10.5, "fill": style.fill, "stroke": style.stroke,
                       "stroke-width": 1.6})
    for k in range(12):
        a = math.pi * k / 6
        _sub(h, "line", {"x1": 8.2 * math.cos(a), "y1": 8.2 * math.sin(a), "x2": 10.5 * math.cos(a),
                         "y2": 10.5 * math.sin(a), "stroke": style.stroke, "stroke-width": 1.0})
    _sub(h, "polyline", {"points": "0.5,-7 0,0 5.5,2.5", "fill": "none", "stroke": style.stroke,
                         "stroke-width": 1.5})


def _glyph_polygon(points: str):
    def draw(h: etree._Element, throw: bool, style: _Style) -> None:
        _sub(h, "polygon", {"points": points, **_glyph_paint(throw, style)})
    return draw


def _glyph_conditional(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "rect", {"x": -7.0, "y": -9.0, "width": 14.0, "height": 18.0, "fill": style.fill,
                     "stroke": style.stroke, "stroke-width": 1.4})
    for y in (-5.0, -1.5, 2.0, 5.5):
        _sub(h, "line", {"x1": -4.5, "y1": y, "x2": 4.5, "y2": y, "stroke": style.stroke, "stroke-width": 1.3})


def _glyph_compensate(h: etree._Element, throw: bool, style: _Style) -> None:
    paint = _glyph_paint(throw, style)
    _sub(h, "polygon", {"points": "-9,0 -0.5,-6.5 -0.5,6.5", **paint})
    _sub(h, "polygon", {"points": "-0.5,0 8,-6.5 8,6.5", **paint})


def _glyph_terminate(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "circle", {"cx": 0.0, "cy": 0.0, "r": 9.5, "fill": style.stroke, "stroke": "none"})


def _glyph_cancel(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "polygon", {"points": _points(_cross(10, 2.3, 45)), **_glyph_paint(throw, style)})


def _glyph_parallel_multiple(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "polygon", {"points": _points(_cross(9.5, 2.8, 0)), **_glyph_paint(throw, style)})


def _glyph_multiple(h: etree._Element, throw: bool, style: _Style) -> None:
    _sub(h, "polygon", {"points": _points(_regular(5, 9.5)), **_glyph_paint(throw, style)})


_GLYPHS = {
    "message": _glyph_message,
    "timer": _glyph_timer,
    "error": _glyph_polygon("-8.5,8.5 -3.5,-7 2,1.5 8.5,-8.5 4,8 -1.5,-0.5"),
    "escalation": _glyph_polygon("0,-9.5 7,8.5 0,2.5 -7,8.5"),
    "signal": _glyph_polygon("0,-9.5 9,7 -9,7"),
    "conditional": _glyph_conditional,
    "compensate": _glyph_compensate,
    "link": _glyph_polygon("-8.5,-3 1.5,-3 1.5,-8 9,0 1.5,8 1.5,3 -8.5,3"),
    "terminate": _glyph_terminate,
    "cancel": _glyph_cancel,
    "multiple": _glyph_multiple,
    "parallelMultiple": _glyph_parallel_multiple,
}


# --------------------------------------------------------------------------- entry point

def _placeholder(message: str) -> str:
    width = max(_width(message, 14) + 40, 200)
    svg = etree.Element(f"{{{SVG_NS}}}svg", nsmap={None: SVG_NS})
    for key, value in (("class", "bpmn-diagram no-di"), ("role", "img"), ("font-family", FONT_FAMILY),
                       ("viewBox", f"0 0 {_f(width)} 60"), ("width", _f(math.ceil(width))), ("height", "60"),
                       ("aria-label", message)):
        svg.set(key, value)
    _sub(svg, "title", None, message)
    _sub(svg, "rect", {"x": 0.5, "y": 0.5, "width": width - 1, "height": 59.0, "rx": 6.0, "fill": "#fafafa",
                       "stroke": "#bbbbbb", "stroke-dasharray": "6 4"})
    _sub(svg, "text", {"x": width / 2, "y": 35.0, "font-size": 14.0, "text-anchor": "middle", "fill": "#555555"},
         message)
    return etree.tostring(svg, encoding="unicode")


def render_svg(bpmn_xml: bytes | str, *, process_id: str | None = None, marks: Mapping[str, str] | None = None,
               labels: bool = True, diagram_id: str | None = None) -> str:
    """Draw a BPMN diagram as an SVG document (text, no XML declaration so it can be inlined in HTML).

    - ``process_id``: draw the diagram showing that process (its own plane, or the collaboration
      containing it); otherwise, or when none matches, the first diagram of the file.
    - ``diagram_id``: draw that BPMNDiagram exactly (see `list_diagrams`); ``ValueError`` if absent.
    - ``marks``: element id → ``"done" | "active" | "waiting" | "incident"``; drawn as a green tint,
      a thick blue outline, an amber outline, a red outline, with a legend above the diagram.
    - ``labels=False`` leaves out the names (thumbnails); hover titles stay.

    Raises ``ValueError`` for malformed XML, a non-BPMN document, input over `MAX_INPUT_BYTES`, or an
    unknown mark kind. A file without DI returns a small SVG saying so (`NO_DI_MESSAGE`).
    """
    clean_marks: dict[str, str] = {}
    for key, kind in (marks or {}).items():
        if kind not in MARK_KINDS:
            raise ValueError(f"未知的标记 {kind!r}（元素 {key!r}）：应为 {', '.join(MARK_KINDS)} 之一")
        clean_marks[_clean(str(key), 500)] = kind
    root = _parse(bpmn_xml)
    model = _Model(root)
    diagram, plane = _choose_plane(root, model, process_id, diagram_id)
    if plane is None or plane.find(".//{*}BPMNShape") is None and plane.find(".//{*}BPMNEdge") is None:
        return _placeholder(NO_DI_MESSAGE)
    renderer = _Renderer(model, plane, clean_marks, labels)
    name = _clean(diagram.get("name"), 200)
    if not name:
        name = model.name_of(model.get(plane.get("bpmnElement")))
    svg = renderer.render(name.replace("\n", " "))
    return etree.tostring(svg, encoding="unicode")
