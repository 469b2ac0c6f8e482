"""Materials checklists and the one-time notification 一次性告知 (seed 003 附件2 §三 表1–表4, 附件1 §三).

Every business kind has a published checklist, kept as data beside the BPMN in
`processes/materials/<business>.json`. A checklist file looks like this::

    {
      "business": "secondhand_transfer",              # must equal the file name
      "name": "国有建设用地使用权及房屋所有权转移登记（二手房）",
      "basis": "seed 003 附件2 §三 表2 …",
      "defaults": {"transfer_basis": "sale"},          # fact values assumed when the case does not say
      "items": [
        {"code": "power_of_attorney",                  # snake_case English, unique in the file
         "name": "委托书",                              # as the published list names it
         "source": "applicant",                        # or "shared:<department>", see DEPARTMENTS
         "essential": true,                            # false: may be accepted with deficiencies (容缺受理)
         "condition": "agent",                         # optional: "fact", "not fact" or "fact=value"
         "why": "由代理人代为申请的，须提交…",            # told to the applicant when it is missing
         "basis": "表2 第2项（委托书）"}
      ]
    }

Rules that follow from the reform and are enforced here:
- An item obtained by sharing (`shared:…`) is never asked of the applicant: it is listed under
  `obtained_by_sharing`, never under `missing`, whatever `provided` says.
- One-time notification: every missing item is reported at once, each with why it is needed, in one
  text (一次性告知书); refusing deferrals also lists every problem at once.
- 容缺受理: only a non-essential item may be deferred, and only with a promised date after today.
- Cases outside "at most one trip" (附件1 §三, seven situations) say which situation applies.

A malformed checklist raises `ChecklistError` naming the file and the item; wrong input from a
case (an unknown item code, an essential item deferred, a past promised date) is a `BusinessError`
the diagram can route back to the window clerk.

The window's forms follow the checklists and are generated from them, so they never drift:
`acceptance_form(business)` (the accept task: the paper items to tick, the deferrable ones with a
promised date, a yes/no or a choice per fact, and delivery) and `supplement_form(business)` (the
deferred items handed in later). `python -m domain.materials --write-forms` writes them to
processes/forms/ (`--check` only reports what is out of date); tests/test_forms.py fails when a
file on disk differs from what the checklist gives.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from threading import Lock
from typing import Any

from domain.clock import SHANGHAI
from domain.errors import BusinessError

__all__ = [
    "DEPARTMENTS",
    "FACT_TITLES",
    "FACT_VALUE_TITLES",
    "FORMS_DIR",
    "MATERIALS_DIR",
    "NOT_ONE_TRIP",
    "WINDOW_BUSINESSES",
    "Checklist",
    "ChecklistError",
    "Condition",
    "Item",
    "acceptance_form",
    "acceptance_ui",
    "businesses",
    "checklist",
    "evaluate",
    "form_text",
    "generated_forms",
    "known_facts",
    "load_checklist",
    "load_checklists",
    "not_one_trip_reasons",
    "parse_checklist",
    "receive_deferred",
    "supplement_form",
    "write_forms",
]

MATERIALS_DIR = Path(__file__).resolve().parent.parent / "processes" / "materials"

DEPARTMENTS: dict[str, str] = {
    "public_security": "公安部门",
    "market_regulation": "市场监管部门",
    "civil_affairs": "民政部门",
    "housing": "住房城乡建设（房管）部门",
    "tax": "税务部门",
    "finance": "财政部门",
    "planning": "规划部门",
    "government": "人民政府有关部门",
    "court": "人民法院（府院联办）",
    "registry": "本登记机构登记簿",
}
"""Departments an item can be obtained from by sharing (`"source": "shared:<key>"`), with their Chinese names."""

STATUS_TEXT = {
    "accepted": "予以受理",
    "accepted_with_deficiencies": "容缺受理",
    "not_accepted": "不予受理",
}

_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_CONDITION_RE = re.compile(r"^(?:(?P<neg>not\s+)?(?P<fact>[a-z][a-z0-9_]*)"
                           r"|(?P<key>[a-z][a-z0-9_]*)=(?P<value>[A-Za-z0-9_]+))$")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_ITEM_FIELDS = {"code", "name", "source", "essential", "condition", "why", "basis"}
_REQUIRED_ITEM_FIELDS = ("code", "name", "source", "essential", "why", "basis")
_FILE_FIELDS = {"business", "name", "basis", "defaults", "items"}
_FALSE_WORDS = {"", "0", "false", "no", "n", "off", "none", "null", "否", "无"}


class ChecklistError(ValueError):
    """A materials checklist file is malformed; the message names the file and the item."""


# ------------------------------------------------------------------------------------ the data


def _truthy(value: Any) -> bool:
    """A fact's value as a yes/no: booleans as they are; strings from forms ("false", "否") read as people mean them."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


@dataclass(frozen=True)
class Condition:
    """When an item is required: `fact` (truthy), `not fact` (falsy or absent) or `fact=value`."""

    text: str
    fact: str
    negated: bool = False
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Condition:
        m = _CONDITION_RE.match(text.strip())
        if not m:
            raise ValueError(f"condition {text!r} should be 'fact', 'not fact' or 'fact=value' (snake_case fact names)")
        if m["key"]:
            return cls(text, m["key"], value=m["value"])
        return cls(text, m["fact"], negated=bool(m["neg"]))

    def holds(self, facts: Mapping[str, Any]) -> bool:
        current = facts.get(self.fact)
        if self.value is not None:
            return current is not None and str(current).strip() == self.value
        return _truthy(current) != self.negated


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    source: str
    essential: bool
    why: str
    basis: str
    condition: Condition | None = None

    @property
    def shared(self) -> bool:
        return self.source.startswith("shared:")

    @property
    def department(self) -> str | None:
        """The department an item is shared from (`housing`), None for paper from the applicant."""
        return self.source.split(":", 1)[1] if self.shared else None

    def required(self, facts: Mapping[str, Any]) -> bool:
        return self.condition is None or self.condition.holds(facts)

    def summary(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "source": self.source, "essential": self.essential}


@dataclass(frozen=True)
class Checklist:
    business: str
    name: str
    basis: str
    items: tuple[Item, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""

    def item(self, code: str) -> Item | None:
        return next((i for i in self.items if i.code == code), None)

    def facts(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The case's facts over the checklist's defaults."""
        return {**self.defaults, **(given or {})}

    def required(self, facts: Mapping[str, Any] | None = None) -> list[Item]:
        """The items this case needs, in the published order: unconditional ones and those whose condition holds."""
        effective = self.facts(facts)
        return [i for i in self.items if i.required(effective)]

    def condition_facts(self) -> set[str]:
        return {i.condition.fact for i in self.items if i.condition is not None} | set(self.defaults)


def _item(origin: str, index: int, raw: Any, seen: set[str]) -> Item:
    where = f"{origin} item {index + 1}"
    if not isinstance(raw, dict):
        raise ChecklistError(f"{where}: should be an object with {', '.join(_REQUIRED_ITEM_FIELDS)}, got {raw!r:.60}")
    code = raw.get("code")
    if isinstance(code, str) and code:
        where = f"{origin} item {index + 1} ('{code}')"
    problems = []
    missing = [f for f in _REQUIRED_ITEM_FIELDS if f not in raw]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    unknown = sorted(set(raw) - _ITEM_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_ITEM_FIELDS))})")
    if "code" in raw:
        if not isinstance(code, str) or not _CODE_RE.match(code):
            problems.append(f"code {code!r} should be snake_case English, e.g. 'power_of_attorney'")
        elif code in seen:
            problems.append(f"code '{code}' appears twice in the file")
    for text_field in ("name", "why", "basis"):
        if text_field in raw and (not isinstance(raw[text_field], str) or not raw[text_field].strip()):
            problems.append(f"{text_field} should be non-empty text")
    if isinstance(raw.get("name"), str) and raw["name"].strip() and not _CJK_RE.search(raw["name"]):
        problems.append(f"name {raw['name']!r} should be the Chinese name the published list uses")
    source = raw.get("source")
    if "source" in raw:
        if not isinstance(source, str) or not (
            source == "applicant" or (source.startswith("shared:") and source[7:] in DEPARTMENTS)
        ):
            problems.append(f"source {source!r} should be 'applicant' or 'shared:<department>' with department one "
                            f"of {', '.join(DEPARTMENTS)}")
    if "essential" in raw and not isinstance(raw["essential"], bool):
        problems.append(f"essential should be true or false, got {raw['essential']!r}")
    condition = None
    if raw.get("condition") is not None:
        if not isinstance(raw["condition"], str):
            problems.append(f"condition should be text, got {raw['condition']!r}")
        else:
            try:
                condition = Condition.parse(raw["condition"])
            except ValueError as err:
                problems.append(str(err))
    if problems:
        raise ChecklistError(f"{where}: " + "; ".join(problems))
    seen.add(code)
    return Item(code=code, name=raw["name"].strip(), source=source, essential=raw["essential"],
                why=raw["why"].strip(), basis=raw["basis"].strip(), condition=condition)


def parse_checklist(data: Any, origin: str, business: str | None = None) -> Checklist:
    """A checklist from its JSON text, bytes or parsed object; `origin` names it in errors (usually the path)."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as err:
            raise ChecklistError(f"{origin}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ChecklistError(f"{origin}: should be a JSON object with business, name, basis and items")
    problems = []
    unknown = sorted(set(data) - _FILE_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_FILE_FIELDS))})")
    code = data.get("business")
    if not isinstance(code, str) or not _CODE_RE.match(code):
        problems.append(f"business {code!r} should be the snake_case business code")
    elif business is not None and code != business:
        problems.append(f"business '{code}' does not match the file name ('{business}')")
    for text_field in ("name", "basis"):
        if not isinstance(data.get(text_field), str) or not data[text_field].strip():
            problems.append(f"{text_field} should be non-empty text")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or not all(isinstance(k, str) and _CODE_RE.match(k) for k in defaults):
        problems.append("defaults should be an object of snake_case fact names to values")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        problems.append("items should be a non-empty list")
    if problems:
        raise ChecklistError(f"{origin}: " + "; ".join(problems))
    seen: set[str] = set()
    parsed = tuple(_item(origin, i, raw, seen) for i, raw in enumerate(items))
    return Checklist(business=code, name=data["name"].strip(), basis=data["basis"].strip(), items=parsed,
                     defaults=dict(defaults), origin=origin)


def load_checklist(path: str | Path) -> Checklist:
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as err:
        raise ChecklistError(f"{path}: cannot be read: {err.strerror or err}") from None
    return parse_checklist(content, str(path), business=path.stem)


def load_checklists(directory: str | Path | None = None) -> dict[str, Checklist]:
    """Every `<business>.json` in the folder (processes/materials by default), validated; the first bad file raises."""
    folder = Path(directory) if directory is not None else MATERIALS_DIR
    if not folder.is_dir():
        raise ChecklistError(f"{folder}: the materials folder does not exist")
    return {p.stem: load_checklist(p) for p in sorted(folder.glob("*.json"))}


_cache: dict[str, Checklist] | None = None
_cache_lock = Lock()


def _all() -> dict[str, Checklist]:
    global _cache
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                _cache = load_checklists()
    return _cache


def businesses() -> list[str]:
    """The business codes that have a checklist."""
    return sorted(_all())


def checklist(business: str) -> Checklist:
    """The published checklist of a business kind; an unknown code is a BusinessError naming the known ones."""
    found = _all().get(business)
    if found is None:
        raise BusinessError("UNKNOWN_BUSINESS",
                            f"没有业务“{business}”的申请材料清单；已有：{'、'.join(businesses())}",
                            business=business)
    return found


# ------------------------------------------------------------------------- not "at most one trip"


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    facts: tuple[str, ...]


NOT_ONE_TRIP: tuple[Reason, ...] = (
    Reason("dispute", "不动产权属有争议的", ("dispute",)),
    Reason("supplement", "申请材料不齐全，需要补正材料的", ("needs_supplement",)),
    Reason("violation", "存在违法行为未处理等情形，不符合登记条件的", ("unresolved_violation",)),
    Reason("unpaid_tax", "申请人未及时缴清相关税费的", ("unpaid_tax",)),
    Reason("prior_approval", "政策性住房上市、划拨土地上不动产转让等需完成前置审核审批或需补交土地出让金的",
           ("prior_approval", "policy_housing", "allocated_land", "land_premium")),
    Reason("legal_procedure", "依法需要履行实地查看、调查、公告等法定程序的",
           ("needs_notice", "needs_inspection", "needs_investigation")),
    Reason("collect_in_person", "现场申请符合登记发证条件，但申请人自愿选择到不动产登记机构现场领取证书证明的",
           ("collect_in_person",)),
)
"""The seven situations outside "at most one trip", in the order and words of seed 003 附件1 §三,
with the case facts that put a case in each. `supplement` also applies whenever materials are
missing or deferred (容缺受理: the applicant still has to hand something in)."""


def not_one_trip_reasons(facts: Mapping[str, Any] | None, *, supplement: bool = False) -> list[dict[str, str]]:
    """Which of the seven situations apply, as [{"code", "text"}] in the published order."""
    facts = facts or {}
    return [{"code": r.code, "text": r.text} for r in NOT_ONE_TRIP
            if any(_truthy(facts.get(f)) for f in r.facts) or (r.code == "supplement" and supplement)]


def known_facts() -> list[str]:
    """Every fact name a checklist condition or a not-one-trip situation reads (for forms and documentation)."""
    names = {f for r in NOT_ONE_TRIP for f in r.facts}
    for c in _all().values():
        names |= c.condition_facts()
    return sorted(names)


# ------------------------------------------------------------------------------------ evaluation


def _local_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=SHANGHAI)).astimezone(SHANGHAI).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return _local_date(datetime.fromisoformat(text))


def _codes(values: Iterable[Any] | None, what: str) -> list[str]:
    out = []
    for v in values or ():
        if isinstance(v, Mapping):  # a form may send {"code": …} objects
            v = v.get("code")
        if not isinstance(v, str) or not v.strip():
            raise BusinessError("MATERIALS_UNKNOWN", f"{what}中有无法识别的材料：{v!r:.60}（应为材料代码）")
        out.append(v.strip())
    return out


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _where(item: Item) -> str:
    return DEPARTMENTS.get(item.department or "", item.department or "")


def evaluate(business: str, provided: Iterable[Any], deferred: Iterable[Mapping[str, Any]] | None,
             facts: Mapping[str, Any] | None, today: date | datetime | str, *,
             case_number: str | None = None) -> dict[str, Any]:
    """The window's acceptance decision and its one-time notification.

    `provided`: item codes handed over; `deferred`: `{"code", "promised_by": "YYYY-MM-DD"}` for items
    promised later (容缺受理); `facts`: what makes items conditional or the case not "one trip";
    `today`: the office's date (a datetime is read in Asia/Shanghai).

    Returns the dict of the `acceptance.evaluate` operator (processes/INTERFACES.md). Raises
    BusinessError MATERIALS_UNKNOWN for item codes the checklist does not have, and DEFERRAL_REFUSED
    for a deferral that cannot be granted (an essential item, a shared item, an item this case does
    not need, a missing, malformed or not-future date) — every problem listed in one message.
    """
    cl = checklist(business)
    day = _local_date(today)
    effective = cl.facts(facts)
    required = cl.required(effective)
    required_codes = {i.code for i in required}
    given = set(_codes(provided, "已提交材料"))

    unknown = sorted(c for c in given if cl.item(c) is None)
    promises: dict[str, date] = {}
    problems: list[str] = []
    for entry in deferred or ():
        code = entry.get("code") if isinstance(entry, Mapping) else None
        if not isinstance(code, str) or not code.strip():
            problems.append(f"容缺材料 {entry!r:.60} 未写明材料代码"
                            f"（应为 {{\"code\": …, \"promised_by\": \"YYYY-MM-DD\"}}）")
            continue
        code = code.strip()
        item = cl.item(code)
        if item is None:
            unknown.append(code)
            continue
        if code in given:
            continue  # handed over after all: nothing is owed
        if item.shared:
            problems.append(f"“{item.name}”由{_where(item)}共享获取，无需申请人提交，也无需承诺补交")
            continue
        if code not in required_codes:
            condition = item.condition.text if item.condition else ""
            problems.append(f"“{item.name}”本案无需提交（条件“{condition}”不成立），不能容缺")
            continue
        if item.essential:
            problems.append(f"“{item.name}”是受理的必要材料，不能容缺受理：{item.why}")
            continue
        raw = entry.get("promised_by")
        try:
            promised = date.fromisoformat(raw.strip()) if isinstance(raw, str) else None
        except ValueError:
            promised = None
        if promised is None:
            problems.append(f"“{item.name}”的承诺补交日期 {raw!r} 无效，应写为 YYYY-MM-DD")
        elif promised <= day:
            problems.append(f"“{item.name}”的承诺补交日期{_cn_date(promised)}不在今天（{_cn_date(day)}）之后，"
                            f"请约定今后的日期")
        elif code in promises:
            problems.append(f"“{item.name}”承诺补交了两次，请只写一个日期")
        else:
            promises[code] = promised
    if unknown:
        known = "、".join(f"{i.code}（{i.name}）" for i in cl.items)
        raise BusinessError("MATERIALS_UNKNOWN",
                            f"{cl.name}的申请材料清单中没有：{'、'.join(sorted(set(unknown)))}。清单中的材料：{known}",
                            unknown=sorted(set(unknown)))
    if problems:
        raise BusinessError("DEFERRAL_REFUSED", "容缺受理不能办理：" + "；".join(problems), problems=problems)

    from_applicant = [i for i in required if not i.shared]
    missing = [i for i in from_applicant if i.code not in given and i.code not in promises]
    deferred_items = [i for i in from_applicant if i.code in promises]
    if missing:
        status = "not_accepted"
    elif deferred_items:
        status = "accepted_with_deficiencies"
    else:
        status = "accepted"
    shared = [i for i in required if i.shared]
    reasons = not_one_trip_reasons(effective, supplement=bool(missing or deferred_items))
    result = {
        "status": status,
        "business": cl.business,
        "required": [i.summary() for i in required],
        "obtained_by_sharing": [{"code": i.code, "name": i.name, "source": i.source} for i in shared],
        "missing": [{"code": i.code, "name": i.name, "why": i.why, "essential": i.essential} for i in missing],
        "deferred": [{"code": i.code, "name": i.name, "promised_by": promises[i.code].isoformat()}
                     for i in deferred_items],
        "notification": "",
        "one_trip": not reasons,
        "not_one_trip_reasons": reasons,
    }
    result["notification"] = _notification(cl, status, missing, deferred_items, promises, shared, reasons, day,
                                           case_number)
    return result


def _notification(cl: Checklist, status: str, missing: Sequence[Item], deferred: Sequence[Item],
                  promises: Mapping[str, date], shared: Sequence[Item], reasons: Sequence[Mapping[str, str]],
                  day: date, case_number: str | None) -> str:
    """The 一次性告知书: the decision, every missing item with why, what is owed and by when, what we obtain
    ourselves, and whether the case is "at most one trip" — in one text."""
    lines = ["不动产登记一次性告知书"]
    if case_number:
        lines.append(f"案件编号：{case_number}")
    lines.append(f"申请事项：{cl.name}")
    lines.append(f"告知日期：{_cn_date(day)}")
    if status == "not_accepted":
        lines.append(f"受理结果：{STATUS_TEXT[status]}。申请材料不齐全，现一次性告知全部所缺材料，请备齐后一次提交。")
    elif status == "accepted_with_deficiencies":
        lines.append(f"受理结果：{STATUS_TEXT[status]}。必要材料齐全，本机构先行受理办理，请按承诺日期补交下列材料。")
    else:
        lines.append(f"受理结果：{STATUS_TEXT[status]}。申请材料齐全。")
    section = 0
    numerals = "一二三四五"
    if missing:
        lines.append("")
        lines.append(f"{numerals[section]}、尚缺的申请材料（共{len(missing)}项）")
        section += 1
        for n, item in enumerate(missing, 1):
            label = "必须提交" if item.essential else "可容缺受理，须约定承诺补交日期"
            lines.append(f"{n}. {item.name}（{label}）：{item.why}")
    if deferred:
        lines.append("")
        lines.append(f"{numerals[section]}、容缺受理、承诺补交的材料（共{len(deferred)}项）")
        section += 1
        for n, item in enumerate(deferred, 1):
            lines.append(f"{n}. {item.name}：请于{_cn_date(promises[item.code])}前补交。{item.why}")
    if shared:
        lines.append("")
        lines.append(f"{numerals[section]}、由本机构通过部门共享获取、无需您提交的材料（共{len(shared)}项）")
        section += 1
        for n, item in enumerate(shared, 1):
            lines.append(f"{n}. {item.name}：由{_where(item)}共享获取")
    lines.append("")
    lines.append(f"{numerals[section]}、是否属于“最多跑一次”")
    if reasons:
        lines.append("本申请不属于“最多跑一次”范围，情形如下：")
        for n, reason in enumerate(reasons, 1):
            lines.append(f"{n}. {reason['text']}")
    else:
        lines.append("本申请属于“最多跑一次”范围：办理结果可到市内任一登记服务窗口领取（同城通办），或选择邮寄送达。")
    return "\n".join(lines)


def receive_deferred(acceptance: Mapping[str, Any], received: Iterable[Any],
                     today: date | datetime | str | None = None) -> dict[str, Any]:
    """A copy of an acceptance with the items that arrived taken out of `deferred`.

    Adds `all_received` and `outstanding` (the deferred entries still owed), and `received`: the
    entries that arrived so far, each with `received_on` (when `today` is given) and `late` (after
    the promised date). When nothing is owed any more the status becomes `accepted`. Handing in an
    item already received is harmless (a retried step); an item that was never deferred is a
    BusinessError DEFERRED_ITEM_UNKNOWN naming what is still owed.
    """
    if not isinstance(acceptance, Mapping) or not isinstance(acceptance.get("deferred"), list) \
            or "status" not in acceptance:
        raise BusinessError("ACCEPTANCE_INVALID",
                            "受理结果数据不完整：应为 acceptance.evaluate 的结果（含 status 与 deferred）")
    day = _local_date(today) if today is not None else None
    codes = _codes(received, "补交材料")
    owed = {d["code"]: dict(d) for d in acceptance["deferred"]}
    done = [dict(r) for r in acceptance.get("received", [])]
    done_codes = {r["code"] for r in done}
    unknown = [c for c in codes if c not in owed and c not in done_codes]
    if unknown:
        still = "、".join(f"{d['code']}（{d['name']}）" for d in owed.values()) or "无"
        raise BusinessError("DEFERRED_ITEM_UNKNOWN",
                            f"{'、'.join(unknown)} 不在容缺受理的承诺补交材料中；尚待补交：{still}", unknown=unknown)
    for code in dict.fromkeys(codes):
        entry = owed.pop(code, None)
        if entry is None:
            continue
        if day is not None:
            entry["received_on"] = day.isoformat()
            entry["late"] = day > date.fromisoformat(entry["promised_by"])
        done.append(entry)
    outstanding = list(owed.values())
    result = dict(acceptance)
    result["deferred"] = outstanding
    result["outstanding"] = [dict(d) for d in outstanding]
    result["received"] = done
    result["all_received"] = not outstanding
    if not outstanding and result["status"] == "accepted_with_deficiencies":
        result["status"] = "accepted"
    return result


# ------------------------------------------------------------------------------------ forms

FORMS_DIR = MATERIALS_DIR.parent / "forms"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

WINDOW_BUSINESSES: dict[str, bool] = {
    "presale_notice": True,
    "secondhand_transfer": True,
    "mortgage": True,
    "transfer_with_mortgage": True,
    "mortgage_cancellation": False,
}
"""The businesses an applicant applies for at the window — their processes have an accept task and a
补交容缺材料 task, so they get generated forms — and whether the case ends with a certificate to deliver
(pickup or mail, the shared issue_and_archive). Seizure and release are ordered by a court and have no
window acceptance; a 抵押权注销 voids the bank's certificate and delivers nothing."""

FACT_TITLES: dict[str, str] = {
    "agent": "由代理人代为申请",
    "organization": "申请人为法人或其他组织",
    "has_pre_notice": "已办理预告登记",
    "allocated_land": "划拨土地上的房屋",
    "policy_housing": "政策性住房（经济适用住房、已购公有住房等）",
    "purchase_restricted": "房屋位于限购区域",
    "tax_relief": "申报享受税费优惠",
    "transfer_basis": "权属转移原因",
    "under_construction": "在建工程抵押",
    "mortgage_pre_notice": "一并申请预购商品房抵押权预告登记",
    "mortgagor_applies": "抵押人共同申请",
    "court_online": "法律文书经府院联办在线送达",
    "dispute": "不动产权属有争议",
    "needs_supplement": "需要补正材料",
    "unresolved_violation": "存在违法行为未处理",
    "unpaid_tax": "未缴清相关税费",
    "prior_approval": "需完成前置审核审批",
    "land_premium": "需补交土地出让金",
    "needs_notice": "依法需要公告",
    "needs_inspection": "依法需要实地查看",
    "needs_investigation": "依法需要调查",
    "collect_in_person": "申请人自愿到登记机构现场领取证书",
}
"""The Chinese label of every case fact a checklist condition or a not-one-trip situation reads (form fields)."""

FACT_VALUE_TITLES: dict[str, dict[str, str]] = {
    "transfer_basis": {
        "sale": "买卖",
        "exchange": "互换、作价出资等",
        "inheritance": "继承、遗赠",
        "corporate_change": "法人或其他组织合并、分立",
        "co_owner_change": "共有人增减或共有份额转移",
        "partition": "不动产分割、合并",
        "court_ruling": "人民法院、仲裁机构生效法律文书",
        "approval": "有批准权的人民政府或主管部门批准",
    },
}
"""The Chinese label of every value a `fact=value` condition names."""

DELIVERY_METHODS = (("pickup", "窗口自取（同城通办，市内任一登记窗口）"), ("mail", "邮寄送达（EMS）"))
# What handlers/delivery.py (delivery.arrange) accepts as a postal address: a place part and a street part
# (empty passes here: minLength says that, so an empty address gets one message, not two).
_ADDRESS_PATTERN = "^$|^(?=.*[省市区县镇乡村])(?=.*([路街道巷弄号幢栋室院]|小区|大厦))"


def _fact_kinds(cl: Checklist) -> dict[str, list[str] | None]:
    """Each fact this checklist or a not-one-trip situation reads, in form order: None for a yes/no
    fact, the list of values for a `fact=value` fact (the checklist's default first if it has one)."""
    kinds: dict[str, list[str] | None] = {}
    conditions = [i.condition for i in cl.items if i.condition is not None]
    for cond in conditions:
        if cond.value is not None:
            values = kinds.get(cond.fact) or []
            if isinstance(cl.defaults.get(cond.fact), str) and cl.defaults[cond.fact] not in values:
                values.insert(0, cl.defaults[cond.fact])
            if cond.value not in values:
                values.append(cond.value)
            kinds[cond.fact] = values
        else:
            kinds.setdefault(cond.fact, None)
    for fact in cl.defaults:
        kinds.setdefault(fact, None)
    for reason in NOT_ONE_TRIP:
        for fact in reason.facts:
            kinds.setdefault(fact, None)
    return kinds


def _fact_property(cl: Checklist, fact: str, values: list[str] | None) -> dict[str, Any]:
    title = FACT_TITLES.get(fact)
    if title is None:
        raise ChecklistError(f"{cl.origin or cl.business}: fact '{fact}' has no Chinese title: add it to "
                             "domain.materials.FACT_TITLES, then regenerate the forms")
    notes = []
    if values is None:
        for negated, prefix in ((False, "是"), (True, "否")):
            needed = [i for i in cl.items if i.condition is not None and i.condition.fact == fact
                      and i.condition.value is None and i.condition.negated == negated]
            asked = "、".join(i.name for i in needed if not i.shared)
            shared = "、".join(i.name for i in needed if i.shared)
            if asked or shared:
                parts = ([f"须提交{asked}"] if asked else []) + ([f"共享获取{shared}"] if shared else [])
                notes.append(f"{prefix}：" + "，".join(parts))
    notes += [f"属于“最多跑一次”的例外情形：{r.text}" for r in NOT_ONE_TRIP if fact in r.facts]
    spec: dict[str, Any] = {"title": title}
    if values is None:
        spec.update(type="boolean", default=_truthy(cl.defaults.get(fact, False)))
    else:
        labels = FACT_VALUE_TITLES.get(fact, {})
        unknown = [v for v in values if v not in labels]
        if unknown:
            raise ChecklistError(f"{cl.origin or cl.business}: value(s) {', '.join(unknown)} of fact '{fact}' have "
                                 "no Chinese title: add them to domain.materials.FACT_VALUE_TITLES, then "
                                 "regenerate the forms")
        spec.update(type="string", oneOf=[{"const": v, "title": labels[v]} for v in values])
        if fact in cl.defaults:
            spec["default"] = cl.defaults[fact]
        for v in values:
            needed = [i.name for i in cl.items if i.condition is not None and i.condition.fact == fact
                      and i.condition.value == v]
            if needed:
                notes.append(f"{labels[v]}：{'、'.join(needed)}")
    if notes:
        spec["description"] = "；".join(notes)
    return spec


def _choice(items: Sequence[Item]) -> dict[str, Any]:
    """A single choice among checklist items (titles are the published names); `enum: []` when there is none."""
    if not items:
        return {"type": "string", "enum": []}
    return {"type": "string", "oneOf": [{"const": i.code, "title": i.name} for i in items]}


def _deferrable(cl: Checklist) -> list[Item]:
    return [i for i in cl.items if not i.shared and not i.essential]


def acceptance_form(business: str, *, delivery: bool | None = None) -> dict[str, Any]:
    """The JSON Schema of the window's accept task (受理（一次性收件）) of a business, from its checklist.

    `provided`: the applicant's paper items (shared items are never asked of the applicant);
    `deferred`: 容缺受理, the non-essential paper items with a promised date; `facts`: every fact the
    checklist's conditions and the not-one-trip situations read; and, when the business ends with a
    certificate (`delivery`, by default from WINDOW_BUSINESSES), how it is delivered. The
    delivery fields are always required because issue_and_archive reads them; the address may be
    empty except for mail. Written to processes/forms/accept_<business>.json by `--write-forms`.
    """
    cl = checklist(business)
    if delivery is None:
        delivery = WINDOW_BUSINESSES.get(business, False)
    paper = [i for i in cl.items if not i.shared]
    deferrable = _deferrable(cl)
    shared = "、".join(i.name for i in cl.items if i.shared)
    deferred: dict[str, Any] = {
        "type": "array", "title": "容缺材料（承诺补交）", "default": [], "maxItems": len(deferrable),
        "items": {"type": "object", "title": "容缺材料", "properties": {
            "code": {"title": "材料", **_choice(deferrable)},
            "promised_by": {"type": "string", "format": "date", "title": "承诺补交日期",
                            "description": "今天以后的日期"},
        }, "required": ["code", "promised_by"]},
    }
    if deferrable:
        deferred["description"] = ("必要材料齐全、非必要材料暂缺的，可先行受理，申请人承诺日期补交（仅限："
                                   + "、".join(i.name for i in deferrable) + "）")
    else:
        deferred["description"] = "本事项的申请材料清单中没有可容缺受理的材料：所需材料须一次提交齐全"
    properties: dict[str, Any] = {
        "provided": {
            "type": "array", "title": "已收材料", "uniqueItems": True, "default": [],
            "description": "申请人当场提交、已核对原件的材料。"
                           + (f"{shared}由部门共享获取或核验，无需申请人提交。" if shared else ""),
            "items": _choice(paper),
        },
        "deferred": deferred,
        "facts": {
            "type": "object", "title": "申请情形",
            "description": "决定需要哪些材料、是否属于“最多跑一次”的申请情形",
            "properties": {f: _fact_property(cl, f, v) for f, v in _fact_kinds(cl).items()},
        },
    }
    required = ["provided", "deferred", "facts"]
    conditions: list[dict[str, Any]] = []
    if delivery:
        properties.update({
            "delivery_method": {"type": "string", "title": "领证方式", "default": "pickup",
                                "oneOf": [{"const": c, "title": t} for c, t in DELIVERY_METHODS]},
            "delivery_address": {"type": "string", "title": "邮寄地址", "default": "", "maxLength": 200,
                                 "description": "邮寄送达时必填：写明省市区县及街道、门牌，"
                                                "如 杭州市西湖区文三路398号3幢1单元501室；窗口自取时留空"},
            "pickup_office": {"type": "string", "title": "领证地点", "default": "", "maxLength": 100,
                              "description": "窗口自取时领证的登记服务窗口，可写全称或能唯一识别的部分"
                                             "（如“西湖区”）；留空为市不动产登记服务中心"},
        })
        required += ["delivery_method", "delivery_address", "pickup_office"]
        conditions.append({
            "if": {"properties": {"delivery_method": {"const": "mail"}}, "required": ["delivery_method"]},
            "then": {"properties": {"delivery_address": {"minLength": 1, "pattern": _ADDRESS_PATTERN}}},
        })
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT, "type": "object", "title": f"受理（一次性收件）：{cl.name}",
        "description": f"按{cl.name}申请材料清单一次性收件；缺少材料的，系统生成一次性告知书，列明全部所缺材料及原因。",
        "properties": properties, "required": required,
    }
    if conditions:
        schema["allOf"] = conditions
    return schema


def acceptance_ui(business: str, *, delivery: bool | None = None) -> dict[str, Any]:
    """The UI schema of the accept form (react-jsonschema-form conventions)."""
    if delivery is None:
        delivery = WINDOW_BUSINESSES.get(business, False)
    checklist(business)
    ui: dict[str, Any] = {
        "ui:order": ["provided", "deferred", "facts"]
                    + (["delivery_method", "delivery_address", "pickup_office"] if delivery else []),
        "provided": {"ui:widget": "checkboxes"},
    }
    if delivery:
        ui["delivery_method"] = {"ui:widget": "radio"}
        ui["delivery_address"] = {"ui:placeholder": "杭州市西湖区文三路398号3幢1单元501室"}
        ui["pickup_office"] = {"ui:placeholder": "西湖区"}
    return ui


def supplement_form(business: str) -> dict[str, Any]:
    """The JSON Schema of 补交容缺材料: `received`, the deferred items handed in now (at least one).

    Only non-essential paper items can have been deferred, so only they are offered; a business
    whose checklist has none gets an empty choice (the task never opens for it). Written to
    processes/forms/supplement_<business>.json by `--write-forms`.
    """
    cl = checklist(business)
    deferrable = _deferrable(cl)
    received: dict[str, Any] = {
        "type": "array", "title": "本次收到的补交材料", "uniqueItems": True, "minItems": 1,
        "description": "核对原件后收件；尚欠的材料及承诺补交日期见案件的容缺材料清单",
        "items": _choice(deferrable),
    }
    if not deferrable:
        received["description"] = "本事项的申请材料清单中没有可容缺受理的材料"
    return {"$schema": SCHEMA_DIALECT, "type": "object", "title": f"补交容缺材料：{cl.name}",
            "properties": {"received": received}, "required": ["received"]}


def generated_forms() -> dict[str, dict[str, Any]]:
    """Every generated form file, by its name relative to processes/ (e.g. forms/accept_mortgage.json)."""
    out: dict[str, dict[str, Any]] = {}
    for business, delivery in WINDOW_BUSINESSES.items():
        out[f"forms/accept_{business}.json"] = acceptance_form(business, delivery=delivery)
        out[f"forms/accept_{business}.ui.json"] = acceptance_ui(business, delivery=delivery)
        out[f"forms/supplement_{business}.json"] = supplement_form(business)
    return out


_KEY_ORDER = ("$schema", "const", "type", "title", "description", "format", "default", "minLength", "maxLength",
              "pattern", "minimum", "maximum", "minItems", "maxItems", "uniqueItems", "enum", "oneOf", "items",
              "properties", "required", "if", "then", "allOf")
_LINE = 110


def _tidy(doc: Any) -> Any:
    """Keys in the order people read a schema in (type, title, description, … properties, required)."""
    if isinstance(doc, Mapping):
        rank = {k: i for i, k in enumerate(_KEY_ORDER)}
        return {k: _tidy(doc[k]) for k in sorted(doc, key=lambda k: (rank.get(k, len(rank)), ))}
    if isinstance(doc, list):
        return [_tidy(v) for v in doc]
    return doc


def _dump(doc: Any, indent: int, used: int, *, top: bool = False) -> str:
    """JSON with a container on one line when it fits (`used`: characters already on the line)."""
    flat = json.dumps(doc, ensure_ascii=False)
    if not isinstance(doc, dict | list) or not doc or (not top and used + len(flat) <= _LINE):
        return flat
    pad = " " * (indent + 2)
    if isinstance(doc, list):
        inner = [pad + _dump(v, indent + 2, indent + 2) for v in doc]
        return "[\n" + ",\n".join(inner) + "\n" + " " * indent + "]"
    inner = []
    for k, v in doc.items():
        key = f"{pad}{json.dumps(k, ensure_ascii=False)}: "
        inner.append(key + _dump(v, indent + 2, len(key)))
    return "{\n" + ",\n".join(inner) + "\n" + " " * indent + "}"


def form_text(doc: Mapping[str, Any]) -> str:
    """A form file's text as --write-forms writes it: keys in reading order, small parts on one line."""
    return _dump(_tidy(doc), 0, 0, top=True) + "\n"


def write_forms(folder: str | Path | None = None, *, check: bool = False) -> list[str]:
    """Write the generated forms into `folder`/forms (processes/ by default); with `check`, write nothing.
    Returns the names of the files that changed (or, with `check`, would change)."""
    root = Path(folder) if folder is not None else FORMS_DIR.parent
    changed = []
    for name, doc in generated_forms().items():
        path = root / name
        text = form_text(doc)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return changed


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m domain.materials",
        description="Generate the accept and supplement forms of processes/forms/ from the materials checklists.")
    parser.add_argument("--write-forms", action="store_true", help="write processes/forms/accept_*.json, "
                        "accept_*.ui.json and supplement_*.json")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    parser.add_argument("--processes", default=None, help="the processes folder (default: the project's)")
    args = parser.parse_args(argv)
    if not (args.write_forms or args.check):
        parser.print_help()
        return 2
    changed = write_forms(args.processes, check=args.check)
    for name in changed:
        print(f"{'out of date' if args.check else 'written'}: {name}")
    if not changed:
        print("forms are up to date")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(_main())
