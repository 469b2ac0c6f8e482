"""The forms of processes/forms: what the task and start pages draw and what submissions are checked against.

Every user task of the standard processes (general_registration.bpmn, deployed alone by other tests,
excepted) and every process's own start event names a JSON Schema form; every form stays within what
the page renderer draws (webapp/schema_form.py); the accept and supplement forms are generated from
the materials checklists and must not drift from them; and what the automated clerks, the simulator
and the process tests submit passes the forms, while typical mistakes are refused naming the field.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from lxml import etree
from sqlalchemy import select

from adapters.sandbox_seed import seed_data, uscc_check_char
from domain import materials
from domain.errors import BusinessError
from engine import DeploymentRejected, Engine, EngineSettings
from handlers.registry import default_registry
from storage.models import ProcessVersion
from tests.conftest import CLERK
from tests.diagrams import chain, definitions, user_task
from webapp.api_forms import form_errors

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
FORMS = PROCESSES / "forms"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
WITHOUT_FORMS = {"general_registration"}  # tests deploy that file alone: a form reference would make it incomplete
STARTED_BY_DATA = {"presale_notice", "secondhand_transfer", "mortgage", "transfer_with_mortgage", "seizure", "release",
                   "mortgage_cancellation"}  # issue_and_archive is called by the others, never started
REGENERATE = ".venv/bin/python -m domain.materials --write-forms"
CJK = re.compile(r"[\u4e00-\u9fff]")

# Fields the page draws as JSON text (outside the renderer's simple kinds), each checked all the same.
JSON_FIELDS = {
    "start_secondhand_transfer.json": {"consents"},  # a list of ID numbers: the register rule reads plain strings
    "start_transfer_with_mortgage.json": {"consents"},
    "start_presale_notice.json": {"contract"},  # the pre-sale contract with its developer and buyers, as housing has it
}
SIMPLE = {"string", "number", "integer", "boolean"}
PROPERTY_KEYS = {"type", "title", "description", "default", "format", "minLength", "maxLength", "pattern", "minimum",
                 "maximum", "oneOf", "enum", "items", "uniqueItems", "minItems", "maxItems", "properties", "required"}
WIDGETS = {"textarea", "radio", "checkboxes", "hidden"}


def schema_files() -> list[str]:
    return sorted(p.name for p in FORMS.glob("*.json") if not p.name.endswith(".ui.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FORMS / name).read_text(encoding="utf-8"))


def errors(form: str, data: dict[str, Any], current: dict[str, Any] | None = None) -> list[dict[str, str]]:
    return form_errors(load(form), data, current or {})


def fields(form: str, data: dict[str, Any]) -> set[str]:
    return {e["field"] for e in errors(form, data)}


# ------------------------------------------------------------------------------ the subset the page draws


def _kind(spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    if isinstance(kind, list):
        assert len(kind) == 2 and "null" in kind, kind
        kind = next(k for k in kind if k != "null")
    return kind


def _choices(spec: dict[str, Any]) -> list[Any] | None:
    if "oneOf" in spec:
        assert spec["oneOf"], "an empty oneOf is not a valid JSON Schema"
        for option in spec["oneOf"]:
            assert set(option) == {"const", "title"} and CJK.search(option["title"]), option
        return [o["const"] for o in spec["oneOf"]]
    if "enum" in spec:
        return list(spec["enum"])
    return None


def check_property(spec: Any, where: str, *, depth: int, as_json: bool) -> None:
    """One property: titled in Chinese, of a kind the renderer draws (or, `as_json`, drawn as JSON text)."""
    assert isinstance(spec, dict), where
    assert set(spec) <= PROPERTY_KEYS, f"{where}: unknown keys {set(spec) - PROPERTY_KEYS}"
    assert isinstance(spec.get("title"), str) and CJK.search(spec["title"]), f"{where}: no Chinese title"
    kind = _kind(spec)
    if "pattern" in spec:
        re.compile(spec["pattern"])
    if "format" in spec:
        assert spec["format"] == "date" and kind == "string", where
    if _choices(spec) is not None:
        assert kind == "string", f"{where}: choices are strings"
    elif kind in SIMPLE:
        assert not {"items", "properties"} & set(spec), where
    elif kind == "array":
        items = spec["items"]
        if _choices(items) is not None:  # multiple choice: checkboxes
            assert items.get("type") == "string" and spec.get("uniqueItems") is True, where
        elif _kind(items) == "object":  # rows of a table
            assert depth == 0 or as_json, f"{where}: a table inside a table or fieldset is drawn as JSON"
            assert "maxItems" in spec, f"{where}: a table needs maxItems"
            check_object(items, where, depth=depth + 1, as_json=as_json)
        else:
            assert as_json, f"{where}: an array of plain values is drawn as JSON text; list it in JSON_FIELDS"
            check_property(items, f"{where}[]", depth=depth + 1, as_json=True)
    elif kind == "object":
        assert depth == 0 or as_json, f"{where}: a fieldset inside a fieldset is drawn as JSON"
        check_object(spec, where, depth=depth + 1, as_json=as_json)
    else:
        raise AssertionError(f"{where}: type {spec.get('type')!r} is not a kind the page draws")
    if "default" in spec:
        jsonschema.Draft202012Validator({k: v for k, v in spec.items() if k != "default"}).validate(spec["default"])


def check_object(spec: dict[str, Any], where: str, *, depth: int, as_json: bool) -> None:
    props = spec.get("properties")
    assert isinstance(props, dict) and props, f"{where}: no properties"
    assert set(spec.get("required", [])) <= set(props), f"{where}: requires what it does not have"
    if depth > 1 and not as_json:
        for name, inner in props.items():
            assert _kind(inner) in SIMPLE or _choices(inner) is not None, \
                f"{where}.{name}: the renderer draws only simple fields inside a table row or fieldset"
    for name, inner in props.items():
        check_property(inner, f"{where}.{name}" if where else name, depth=depth, as_json=as_json)


def _named_in_conditions(node: Any) -> set[str]:
    """Property names an if/then/allOf part constrains, at the top level of the form."""
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {})) | set(node.get("required", []))
        for key in ("if", "then", "else"):
            if key in node:
                names |= _named_in_conditions(node[key])
        for part in node.get("allOf", []):
            names |= _named_in_conditions(part)
    return names


@pytest.mark.parametrize("name", schema_files())
def test_every_form_is_a_json_schema_the_page_can_draw(name: str) -> None:
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and CJK.search(schema["title"])
    assert set(schema) <= {"$schema", "type", "title", "description", "properties", "required", "allOf"}
    props = schema["properties"]
    assert set(schema["required"]) <= set(props)
    allowed_json = JSON_FIELDS.get(name, set())
    for field, spec in props.items():
        check_property(spec, field, depth=0, as_json=field in allowed_json)
    for part in schema.get("allOf", []):
        assert _named_in_conditions(part) <= set(props), f"{name}: a condition names a field the form lacks"


def test_every_ui_schema_belongs_to_a_form_and_names_its_fields() -> None:
    for path in sorted(FORMS.glob("*.ui.json")):
        ui = json.loads(path.read_text(encoding="utf-8"))
        form = load(path.name.replace(".ui.json", ".json"))
        props = form["properties"]
        assert set(ui.get("ui:order", [])) <= set(props) | {"*"}, path.name
        for field, hints in ui.items():
            if field.startswith("ui:"):
                continue
            assert field in props, f"{path.name}: {field} is not a field of the form"
            assert set(hints) <= {"ui:widget", "ui:help", "ui:placeholder", "ui:title"}, path.name
            assert hints.get("ui:widget", "textarea") in WIDGETS, path.name


# ------------------------------------------------------------------------------ the diagrams name them


def _form_of(node: Any) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in node.iterfind(
        "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}


def test_every_user_task_and_start_event_of_the_standard_processes_names_a_form() -> None:
    named: set[str] = set()
    for path in sorted(PROCESSES.glob("*.bpmn")):
        root = etree.parse(str(path)).getroot()
        for proc in root.iterfind("bpmn:process", NS):
            pid = proc.get("id")
            tasks = list(proc.iterfind(".//bpmn:userTask", NS))
            starts = list(proc.iterfind("bpmn:startEvent", NS))
            if pid in WITHOUT_FORMS:
                assert not any(_form_of(n) for n in tasks + starts), f"{pid} must stay without forms"
                continue
            assert tasks or pid in STARTED_BY_DATA, pid
            for node in tasks + (starts if pid in STARTED_BY_DATA else []):
                form = _form_of(node)
                schema = form.get("formJsonSchemaFilename")
                assert schema, f"{path.name}: {node.get('id')} names no form"
                assert (PROCESSES / schema).is_file(), f"{path.name}: {node.get('id')} names missing {schema}"
                named.add(schema)
                ui = form.get("formUiSchemaFilename")
                if ui:
                    assert (PROCESSES / ui).is_file() and ui == schema.replace(".json", ".ui.json"), ui
                    named.add(ui)
                elif (PROCESSES / schema.replace(".json", ".ui.json")).is_file():
                    raise AssertionError(f"{path.name}: {node.get('id')} does not name {schema[:-5]}.ui.json")
            if pid in STARTED_BY_DATA:
                assert [_form_of(s).get("formJsonSchemaFilename") for s in starts] == [f"forms/start_{pid}.json"]
    on_disk = {f"forms/{p.name}" for p in FORMS.glob("*.json")}
    assert on_disk == named, f"form files no diagram names: {sorted(on_disk - named)}"


def test_the_whole_folder_deploys_with_start_forms_in_the_meta(db, clock) -> None:
    engine = Engine(db, default_registry(), clock)
    engine.deploy_paths([PROCESSES], "designer")
    with db.read() as s:
        versions = {pv.process_id: pv for pv in s.scalars(select(ProcessVersion))}
    for pid in STARTED_BY_DATA:
        pv = versions[pid]
        assert pv.meta["start_form"] == f"forms/start_{pid}.json"
        assert json.loads(pv.assets[pv.meta["start_form"]]) == load(f"start_{pid}.json")
        for task, form in pv.meta["forms"].items():
            assert form in pv.assets, (pid, task)
            ui = pv.meta["ui_forms"].get(task)
            assert ui is None or ui in pv.assets
    assert versions["secondhand_transfer"].meta["start_ui"] == "forms/start_secondhand_transfer.ui.json"
    assert versions["issue_and_archive"].meta["forms"] == {"hand_over": "forms/hand_over.json"}
    assert "start_form" not in versions["issue_and_archive"].meta
    assert versions["general_registration"].meta["forms"] == {} and not versions["general_registration"].assets


# ------------------------------------------------------------------------------ generated from the checklists


def test_the_generated_forms_on_disk_match_the_checklists() -> None:
    for name, doc in materials.generated_forms().items():
        path = PROCESSES / name
        assert path.is_file(), f"{name} is missing: run {REGENERATE}"
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(materials.form_text(doc)), \
            f"{name} differs from the materials checklist: run {REGENERATE}"
    generated = {Path(n).name for n in materials.generated_forms()}
    stale = {p.name for p in FORMS.glob("accept_*.json")} | {p.name for p in FORMS.glob("supplement_*.json")}
    assert stale - {"supplement_overdue.json", "supplement_overdue.ui.json"} <= generated, \
        f"forms of businesses that have none: {sorted(stale - generated)}"
    assert materials.write_forms(check=True) == [], f"generated forms are out of date: run {REGENERATE}"


def test_write_forms_writes_every_generated_file(tmp_path: Path) -> None:
    written = materials.write_forms(tmp_path)
    assert sorted(written) == sorted(materials.generated_forms())
    assert materials.write_forms(tmp_path) == [] and materials.write_forms(tmp_path, check=True) == []
    (tmp_path / "forms" / "accept_mortgage.json").write_text("{}", encoding="utf-8")
    assert materials.write_forms(tmp_path, check=True) == ["forms/accept_mortgage.json"]


@pytest.mark.parametrize("business", sorted(materials.WINDOW_BUSINESSES))
def test_the_accept_form_follows_the_checklist(business: str) -> None:
    cl = materials.checklist(business)
    form = materials.acceptance_form(business)
    props = form["properties"]
    paper = [i for i in cl.items if not i.shared]
    assert [(o["const"], o["title"]) for o in props["provided"]["items"]["oneOf"]] == [(i.code, i.name) for i in paper]
    deferrable = [i.code for i in paper if not i.essential]
    code = props["deferred"]["items"]["properties"]["code"]
    assert [o["const"] for o in code.get("oneOf", [])] == deferrable
    assert props["deferred"]["maxItems"] == len(deferrable)
    facts = props["facts"]["properties"]
    assert set(facts) == cl.condition_facts() | {f for r in materials.NOT_ONE_TRIP for f in r.facts}
    for cond in (i.condition for i in cl.items if i.condition is not None):
        if cond.value is not None:
            assert cond.value in [o["const"] for o in facts[cond.fact]["oneOf"]]
        else:
            assert facts[cond.fact]["type"] == "boolean"
    for fact, value in cl.defaults.items():
        assert facts[fact]["default"] == value
    assert ("delivery_method" in props) is materials.WINDOW_BUSINESSES[business]
    received = materials.supplement_form(business)["properties"]["received"]["items"]
    assert [o["const"] for o in received.get("oneOf", [])] == deferrable


def test_every_known_fact_has_a_chinese_title() -> None:
    for fact in materials.known_facts():
        assert CJK.search(materials.FACT_TITLES.get(fact, "")), fact
    for fact, values in materials.FACT_VALUE_TITLES.items():
        assert fact in materials.FACT_TITLES and all(CJK.search(t) for t in values.values())


def test_a_fact_without_a_title_stops_the_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(materials.FACT_TITLES, "agent")
    with pytest.raises(materials.ChecklistError, match="fact 'agent' has no Chinese title"):
        materials.acceptance_form("mortgage")


@pytest.mark.parametrize("address", ["杭州市西湖区文三路398号3幢2单元1102室", "浙江省杭州市滨江区江南大道100号",
                                     "西湖区某某小区", "文三路398号", "杭州市西湖区", "不详", "北京", "某村"])
def test_the_accept_form_judges_a_postal_address_as_delivery_arrange_does(address: str) -> None:
    from handlers.delivery import arrange

    try:
        arrange(SimpleNamespace(case_number="2026-000001"), "mail", address)
        handler_ok = True
    except BusinessError:
        handler_ok = False
    data = {**_accept("secondhand_transfer"), "delivery_method": "mail", "delivery_address": address}
    assert (errors("accept_secondhand_transfer.json", data) == []) is handler_ok


# ------------------------------------------------------------------------------ what is submitted passes


def _accept(business: str, **extra: Any) -> dict[str, Any]:
    from webapp.simulate import acceptance_form

    return acceptance_form(business, **extra)


def _task_forms() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(PROCESSES.glob("*.bpmn")):
        root = etree.parse(str(path)).getroot()
        for proc in root.iterfind("bpmn:process", NS):
            for task in proc.iterfind(".//bpmn:userTask", NS):
                form = _form_of(task).get("formJsonSchemaFilename")
                if form:
                    out.append((proc.get("id"), task.get("id"), form.removeprefix("forms/")))
    return out


def test_what_the_automated_clerks_enter_passes_the_forms() -> None:
    from webapp.simulate import clerk_answer

    answered = set()
    for process, task, form in _task_forms():
        answer = clerk_answer(process, task)
        if answer is None:  # a task the simulator leaves to a person (refuse, resolve, supplements, …)
            continue
        assert errors(form, answer) == [], (process, task, answer)
        answered.add(task)
    assert {"accept", "review", "hand_over", "urge_yellow", "urge_red"} <= answered


def test_what_the_process_tests_enter_in_tasks_passes_the_forms() -> None:
    """The task data tests/test_processes.py and tests/test_process_paths.py complete tasks with."""
    promised = "2026-11-25"
    submissions = [
        ("accept_mortgage.json", _accept("mortgage", pickup_office="西湖区")),
        ("accept_mortgage.json", _accept("mortgage", provided=["application_form"])),  # not accepted, told at once
        ("accept_secondhand_transfer.json", _accept(
            "secondhand_transfer", delivery_method="mail", delivery_address="杭州市西湖区文三路398号3幢2单元1102室")),
        ("accept_secondhand_transfer.json", _accept("secondhand_transfer", provided=[],
                                                    facts={"agent": True, "tax_relief": True})),
        ("accept_secondhand_transfer.json", _accept("secondhand_transfer", facts={"tax_relief": True},
                                                    deferred=[{"code": "tax_relief_proof", "promised_by": promised}])),
        ("accept_transfer_with_mortgage.json", _accept("transfer_with_mortgage", facts={"tax_relief": True},
                                                       deferred=[{"code": "tax_relief_proof",
                                                                  "promised_by": "2026-11-27"}])),
        ("accept_presale_notice.json", _accept("presale_notice")),
        ("accept_mortgage_cancellation.json", _accept("mortgage_cancellation")),
        ("accept_mortgage_cancellation.json", {
            **_accept("mortgage_cancellation"),
            "provided": [c for c in _accept("mortgage_cancellation")["provided"] if c != "mortgage_certificate"],
            "deferred": [{"code": "mortgage_certificate", "promised_by": "2026-11-24"}]}),
        ("review.json", {"approved": True, "opinion": "抵押合同与主债权合同一致，同意登记"}),
        ("review.json", {"approved": False, "opinion": "该房屋已被法院查封"}),
        ("refuse.json", {"refusal_opinion": "依法不予登记"}),
        ("urge.json", {"urge_opinion": "请今日办结"}),
        ("urge.json", {"urge_opinion": "超期，今日办结"}),
        ("supplement_overdue.json", {"overdue_opinion": "已电话督促，明日补交"}),
        ("supplement_secondhand_transfer.json", {"received": ["tax_relief_proof"]}),
        ("supplement_transfer_with_mortgage.json", {"received": ["tax_relief_proof"]}),
        ("supplement_mortgage_cancellation.json", {"received": ["mortgage_certificate"]}),
        ("hand_over.json", {"handed_over_to": "中国工商银行西湖支行 许敏"}),
        ("hand_over.json", {"handed_over_to": "EMS"}),
    ]
    for form, data in submissions:
        assert errors(form, data) == [], (form, data)


def _bank() -> dict[str, Any]:
    first17 = "91330106MA2B7K1X4"
    return {"name": "中国工商银行股份有限公司杭州西湖支行", "id_type": "统一社会信用代码",
            "id_number": first17 + uscc_check_char(first17)}


def test_what_the_process_tests_start_cases_with_passes_the_start_forms() -> None:
    """The start data of tests/test_processes.py and tests/test_process_paths.py, built from the same seed."""
    data = seed_data()
    wang = data.people["王芳"].model_dump(mode="json")
    flat = "330106004002GB00107F00030036"
    old_bank = {"name": "中国建设银行股份有限公司杭州城西支行", "id_type": "统一社会信用代码",
                "id_number": "91330106MA2CCB0001"}
    starts: list[tuple[str, dict[str, Any]]] = [
        ("mortgage", {"unit_number": flat, "mortgagors": [wang], "mortgagee": _bank(), "amount": "1500000.00",
                      "term_start": "2026-11-23", "term_end": "2046-11-22", "mode": "ordinary",
                      "applicant_phone": wang["phone"], "channel": "bank"}),
        ("mortgage_cancellation", {"unit_number": flat, "mortgagee": old_bank,
                                   "mortgage_certificate_no": "浙（2026）杭州市不动产证明第0000001号",
                                   "applicant_phone": wang["phone"]}),
        ("mortgage_cancellation", {"unit_number": flat, "mortgagee": old_bank, "mortgage_certificate_no": "",
                                   "applicant_phone": wang["phone"]}),
        ("seizure", {"order_id": "", "court": "杭州市西湖区人民法院", "document_no": "(2026)浙0106执保2002号",
                     "unit_number": flat, "starts_on": "2026-11-23", "ends_on": "2029-11-22",
                     "court_contact": "13757100001"}),
    ]
    for contract in data.sale_contracts:
        unit = data.unit(contract.unit_number)
        transfer = {"contract_no": contract.contract_no, "seller_acquired_on": unit.acquired_on.isoformat(),
                    "seller_original_price": str(unit.purchase_price), "seller_only_home": False, "consents": []}
        starts.append(("secondhand_transfer", transfer))
        starts.append(("transfer_with_mortgage", {**transfer, "mortgagee": _bank(), "amount": "2000000.00",
                                                  "term_start": "2026-11-23", "term_end": "2056-11-22",
                                                  "mode": "ordinary"}))
    for presale in data.presale_contracts:
        starts.append(("presale_notice", {"contract": presale.contract.model_dump(mode="json")}))
    for process, start in starts:
        assert errors(f"start_{process}.json", start) == [], (process, start)


@pytest.mark.parametrize("process", sorted(STARTED_BY_DATA))
def test_the_simulators_cases_start_with_data_the_start_form_accepts(db, clock, process: str) -> None:
    from adapters.factory import sandbox_database, sandbox_departments
    from webapp.simulate import WorldBuilder, world_for

    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=5.0),
                    services=sandbox_departments(sandbox_database(db), clock))
    world = world_for(process, WorldBuilder(engine, clock.now()), 3)
    assert len(world.starts) == 3
    for start in world.starts:
        assert errors(f"start_{process}.json", start) == [], start


# ------------------------------------------------------------------------------ mistakes are refused


def test_a_review_needs_a_decision_and_a_refusal_needs_its_reason() -> None:
    assert fields("review.json", {"opinion": "同意"}) == {"approved"}
    [refused] = errors("review.json", {"approved": False})
    assert refused["field"] == "opinion" and "审核意见" in refused["message"]
    assert fields("review.json", {"approved": False, "opinion": ""}) == {"opinion"}
    assert errors("review.json", {"approved": True}) == []
    assert fields("review.json", {"approved": "yes"}) == {"approved"}


def test_mail_delivery_needs_an_address_the_post_can_use() -> None:
    mail = {**_accept("secondhand_transfer"), "delivery_method": "mail", "delivery_address": ""}
    [missing] = errors("accept_secondhand_transfer.json", mail)
    assert missing["field"] == "delivery_address" and "邮寄地址" in missing["message"]
    assert fields("accept_secondhand_transfer.json", {**mail, "delivery_address": "不详"}) == {"delivery_address"}
    assert fields("accept_secondhand_transfer.json", {**mail, "delivery_method": "courier"}) == {"delivery_method"}
    no_delivery = {k: v for k, v in _accept("mortgage").items() if not k.startswith(("delivery", "pickup"))}
    assert fields("accept_mortgage.json", no_delivery) == {"delivery_method", "delivery_address", "pickup_office"}


def test_materials_not_on_the_checklist_or_not_deferrable_are_refused() -> None:
    form = _accept("secondhand_transfer")
    assert fields("accept_secondhand_transfer.json", {**form, "provided": [*form["provided"], "house_photo"]}) == {
        f"provided.{len(form['provided'])}"}
    shared = {**form, "provided": ["sale_contract"]}  # shared by housing: never asked of the applicant
    assert fields("accept_secondhand_transfer.json", shared) == {"provided.0"}
    essential = {**form, "deferred": [{"code": "title_certificate", "promised_by": "2026-11-30"}]}
    assert fields("accept_secondhand_transfer.json", essential) == {"deferred.0.code"}
    undated = {**form, "deferred": [{"code": "tax_relief_proof"}]}
    assert fields("accept_secondhand_transfer.json", undated) == {"deferred.0.promised_by"}
    bad_date = {**form, "deferred": [{"code": "tax_relief_proof", "promised_by": "2026-13-01"}]}
    assert fields("accept_secondhand_transfer.json", bad_date) == {"deferred.0.promised_by"}
    nothing_deferrable = {**_accept("mortgage"), "deferred": [{"code": "loan_contract", "promised_by": "2026-11-30"}]}
    assert "deferred" in fields("accept_mortgage.json", nothing_deferrable)
    assert fields("accept_secondhand_transfer.json", {**form, "facts": {"transfer_basis": "gift"}}) == {
        "facts.transfer_basis"}
    assert fields("supplement_secondhand_transfer.json", {"received": ["title_certificate"]}) == {"received.0"}
    assert fields("supplement_secondhand_transfer.json", {"received": []}) == {"received"}


def test_start_data_is_checked_before_a_case_exists() -> None:
    assert fields("start_secondhand_transfer.json", {"seller_acquired_on": "2012-05-01",
                                                     "seller_original_price": "1200000", "seller_only_home": False,
                                                     "consents": []}) == {"contract_no"}
    transfer = {"contract_no": "CL3301-2026-001201", "seller_acquired_on": "2012-05-01",
                "seller_original_price": "120万", "seller_only_home": False, "consents": []}
    assert fields("start_secondhand_transfer.json", transfer) == {"seller_original_price"}
    mortgage = {"unit_number": "330106004002GB00107F0003003", "mortgagors": [], "mortgagee": {"name": "银行"},
                "amount": "1500000.00", "term_start": "2026-11-23", "term_end": "2046-11-22", "mode": "fixed",
                "applicant_phone": "0571-1234"}
    assert fields("start_mortgage.json", mortgage) == {"unit_number", "mortgagors", "mortgagee.id_number", "mode",
                                                       "applicant_phone"}
    seizure = {"court": "杭州市西湖区人民法院", "document_no": "(2026)浙0106执保2002号",
               "unit_number": "330106004002GB00107F00030036", "starts_on": "2026-11-23", "ends_on": "2029-11-22",
               "court_contact": "承办人"}
    assert fields("start_seizure.json", seizure) == {"court_contact"}


def test_a_registrar_resolving_a_refused_court_order_retries_or_replies() -> None:
    assert fields("resolve_seizure.json", {"retry": False}) == {"reply"}
    assert errors("resolve_seizure.json", {"retry": False, "reply": "该单元不在本机构辖区，函复法院"}) == []
    assert errors("resolve_seizure.json", {"retry": True, "unit_number": "330106004002GB00107F00030036"}) == []
    # giving up is possible even when the court's unit number is malformed (it is in the case data)
    assert errors("resolve_seizure.json", {"retry": False, "reply": "单元号有误"}, {"unit_number": "3301"}) == []
    assert fields("resolve_seizure.json", {"retry": True}) == set()
    assert {e["field"] for e in form_errors(load("resolve_seizure.json"), {"retry": True},
                                            {"unit_number": "3301"})} == {"unit_number"}
    assert fields("resolve_release.json", {"retry": True, "released_document_no": ""}) == {"released_document_no"}
    assert fields("correct_contract_no.json", {"contract_no": "CL3301 2026"}) == {"contract_no"}


# ------------------------------------------------------------------------------ start forms at deployment


def _with_start_form(schema: str | None, ui: str | None = None) -> bytes:
    props = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in
                    (("formJsonSchemaFilename", schema), ("formUiSchemaFilename", ui)) if v)
    start = ('<bpmn:startEvent id="start" name="申请"><bpmn:extensionElements><spiffworkflow:properties>'
             f"{props}</spiffworkflow:properties></bpmn:extensionElements></bpmn:startEvent>")
    return definitions(chain(user_task()).replace('<bpmn:startEvent id="start"/>', start))


START_SCHEMA = json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                           "title": "申请", "properties": {"applicant": {"type": "string", "title": "申请人"}},
                           "required": ["applicant"]}, ensure_ascii=False).encode()


def test_a_start_form_naming_a_missing_file_is_refused(engine) -> None:
    with pytest.raises(DeploymentRejected) as exc:
        engine.deploy([("p.bpmn", _with_start_form("forms/start_p.json"))], "designer")
    [problem] = exc.value.problems
    assert (problem.file, problem.element_id) == ("p.bpmn", "start")
    assert "formJsonSchemaFilename names 'forms/start_p.json', which is not in the deployment" in problem.message
    assert engine.versions() == []


def test_a_start_form_that_is_no_json_schema_is_refused(engine) -> None:
    bad = json.dumps({"type": "objekt"}).encode()
    with pytest.raises(DeploymentRejected) as exc:
        engine.deploy([("p.bpmn", _with_start_form("forms/start_p.json")), ("forms/start_p.json", bad)], "designer")
    [problem] = exc.value.problems
    assert (problem.file, problem.element_id) == ("forms/start_p.json", "start")
    assert "not a valid JSON Schema" in problem.message


def test_a_start_form_inside_a_subprocess_is_refused(engine) -> None:
    inner = ('<bpmn:subProcess id="sub"><bpmn:startEvent id="sub_start"><bpmn:extensionElements>'
             '<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" '
             'value="forms/start_p.json"/></spiffworkflow:properties></bpmn:extensionElements></bpmn:startEvent>'
             '<bpmn:endEvent id="sub_end"/><bpmn:sequenceFlow id="sf" sourceRef="sub_start" targetRef="sub_end"/>'
             "</bpmn:subProcess>")
    with pytest.raises(DeploymentRejected) as exc:
        engine.deploy([("p.bpmn", definitions(chain(inner))), ("forms/start_p.json", START_SCHEMA)], "designer")
    [problem] = exc.value.problems
    assert problem.element_id == "sub_start" and "process's own start event" in problem.message


def test_a_start_form_is_stored_with_the_version_and_named_in_its_meta(engine) -> None:
    ui = json.dumps({"applicant": {"ui:placeholder": "王芳"}}, ensure_ascii=False).encode()
    [deployed] = engine.deploy([("p.bpmn", _with_start_form("forms/start_p.json", "forms/start_p.ui.json")),
                                ("forms/start_p.json", START_SCHEMA), ("forms/start_p.ui.json", ui)], "designer")
    with engine.db.read() as s:
        pv = s.get(ProcessVersion, deployed.id)
        assert pv.meta["start_form"] == "forms/start_p.json" and pv.meta["start_ui"] == "forms/start_p.ui.json"
        assert pv.assets == {"forms/start_p.json": START_SCHEMA.decode(), "forms/start_p.ui.json": ui.decode()}
    [plain] = engine.deploy([("q.bpmn", _with_start_form("forms/start_p.json").replace(b'"p"', b'"q"')),
                             ("forms/start_p.json", START_SCHEMA)], "designer")
    with engine.db.read() as s:
        meta = s.get(ProcessVersion, plain.id).meta
        assert meta["start_form"] == "forms/start_p.json" and "start_ui" not in meta
    case = engine.start_case("p", {"applicant": "王芳"}, CLERK)
    assert engine.get_case(case.id)["status"] == "active"


def test_the_start_form_of_the_version_is_what_the_web_reads(engine) -> None:
    from webapp.api_forms import start_form

    engine.deploy([("p.bpmn", _with_start_form("forms/start_p.json")), ("forms/start_p.json", START_SCHEMA)], "d")
    with engine.db.read() as s:
        schema, ui = start_form(s, "p")
    assert schema == json.loads(START_SCHEMA) and ui == {}
    assert form_errors(schema, {}, {}) == [{"field": "applicant", "message": "申请人（applicant）：必填"}]


def test_what_a_process_reads_unconditionally_must_be_sent_even_when_empty() -> None:
    """issue_and_archive reads delivery_address and pickup_office, seizure and release court_contact, the
    cancellation mortgage_certificate_no, whatever they hold: leaving one out would stop the case with an
    incident later (an undefined name), so the form asks for it, and an empty text is a valid answer."""
    pickup = _accept("mortgage")
    assert errors("accept_mortgage.json", {**pickup, "delivery_address": "", "pickup_office": ""}) == []
    assert fields("accept_mortgage.json", {k: v for k, v in pickup.items() if k != "delivery_address"}) == {
        "delivery_address"}
    seizure = {"court": "杭州市西湖区人民法院", "document_no": "(2026)浙0106执保2002号", "order_id": "",
               "unit_number": "330106004002GB00107F00030036", "starts_on": "2026-11-23", "ends_on": "2029-11-22"}
    assert fields("start_seizure.json", seizure) == {"court_contact"}
    assert errors("start_seizure.json", {**seizure, "court_contact": ""}) == []
