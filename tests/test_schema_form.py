"""Task forms drawn from JSON Schema and read back (webapp.schema_form): what a clerk types
becomes the data the schema judges, and every refusal lands beside the field it concerns."""
from __future__ import annotations

from werkzeug.datastructures import MultiDict

from webapp import schema_form
from webapp.api_forms import form_errors

ACCEPT = {
    "type": "object", "required": ["provided", "delivery_method"],
    "properties": {
        "provided": {"type": "array", "title": "已收材料", "uniqueItems": True, "minItems": 1,
                     "items": {"type": "string", "oneOf": [{"const": "application_form", "title": "不动产登记申请书"},
                                                           {"const": "title_certificate", "title": "不动产权属证书"}]}},
        "deferred": {"type": "array", "title": "容缺材料", "maxItems": 3, "items": {
            "type": "object", "required": ["code", "promised_by"], "properties": {
                "code": {"type": "string", "title": "材料", "enum": ["tax_relief_proof"]},
                "promised_by": {"type": "string", "format": "date", "title": "承诺补交日期"}}}},
        "facts": {"type": "object", "title": "申请情形", "properties": {
            "agent": {"type": "boolean", "title": "代理人办理"},
            "transfer_basis": {"type": "string", "title": "转移原因",
                               "oneOf": [{"const": "sale", "title": "买卖"},
                                         {"const": "inheritance", "title": "继承"}]}}},
        "delivery_method": {"type": "string", "title": "领证方式",
                            "oneOf": [{"const": "pickup", "title": "窗口自取"},
                                      {"const": "mail", "title": "邮寄送达"}]},
        "delivery_address": {"type": "string", "title": "邮寄地址"},
        "share": {"type": "integer", "title": "份额", "minimum": 1},
        "opinion": {"type": "string", "title": "意见"},
    },
    "if": {"properties": {"delivery_method": {"const": "mail"}}},
    "then": {"required": ["delivery_address"]},
}
UI = {"ui:order": ["delivery_method", "*"], "opinion": {"ui:widget": "textarea", "ui:help": "写明理由"},
      "share": {"ui:widget": "hidden"}}


def test_every_kind_of_field_is_drawn_in_the_designers_order() -> None:
    fields = schema_form.fields_of(ACCEPT, UI)
    assert [(f["name"], f["kind"]) for f in fields] == [
        ("delivery_method", "choice"), ("provided", "multi"), ("deferred", "rows"), ("facts", "group"),
        ("delivery_address", "string"), ("opinion", "text")]  # share is hidden
    facts = fields[3]
    assert [(c["name"], c["kind"]) for c in facts["children"]] == [("facts.agent", "boolean"),
                                                                   ("facts.transfer_basis", "choice")]
    assert fields[1]["options"][1] == ("title_certificate", "不动产权属证书")
    assert fields[2]["max_rows"] == 3 and fields[5]["help"] == "写明理由"


def test_a_posted_form_becomes_data_with_nested_objects_lists_and_rows() -> None:
    fields = schema_form.fields_of(ACCEPT, UI)
    form = MultiDict([("delivery_method", "mail"), ("provided", "application_form"), ("provided", "title_certificate"),
                      ("deferred[0].code", ""), ("deferred[0].promised_by", ""),  # an empty row is no row
                      ("deferred[1].code", "tax_relief_proof"), ("deferred[1].promised_by", "2026-11-30"),
                      ("facts.agent", "true"), ("facts.transfer_basis", "sale"),
                      ("delivery_address", "杭州市西湖区文三路398号"), ("opinion", " 同意 ")])
    data, errors = schema_form.parse(fields, form)
    assert errors == {}
    assert data == {"delivery_method": "mail", "provided": ["application_form", "title_certificate"],
                    "deferred": [{"code": "tax_relief_proof", "promised_by": "2026-11-30"}],
                    "facts": {"agent": True, "transfer_basis": "sale"},
                    "delivery_address": "杭州市西湖区文三路398号", "opinion": "同意"}
    assert form_errors(ACCEPT, data, {}) == []
    # drawn again from the data, the same inputs come back
    values = schema_form.values_of(fields, data)
    assert values["provided"] == ["application_form", "title_certificate"]
    assert values["facts.agent"] == "true" and values["deferred"] == [
        {"code": "tax_relief_proof", "promised_by": "2026-11-30"}]


def test_refusals_are_placed_beside_their_fields() -> None:
    fields = schema_form.fields_of(ACCEPT, UI)
    form = MultiDict([("delivery_method", "mail"), ("provided", "forged_code"),
                      ("deferred[0].code", "tax_relief_proof"), ("deferred[0].promised_by", "2026-02-30")])
    data, errors = schema_form.parse(fields, form)
    assert set(errors) == {"provided", "deferred[0].promised_by"}
    assert "请从列表中选择" in errors["provided"] and "YYYY-MM-DD" in errors["deferred[0].promised_by"]
    # readable but wrong: the schema's messages, each on its field
    data, errors = schema_form.parse(fields, MultiDict([("delivery_method", "mail"),
                                                        ("deferred[0].code", "tax_relief_proof")]))
    assert errors == {}
    placed = {schema_form.error_field(e["field"], fields): e["message"] for e in form_errors(ACCEPT, data, {})}
    assert set(placed) == {"provided", "delivery_address", "deferred[0].promised_by"}
    assert "必填" in placed["delivery_address"] and "邮寄地址" in placed["delivery_address"]


def test_numbers_and_dates_that_cannot_be_read() -> None:
    schema = {"type": "object", "properties": {"share": {"type": "integer", "title": "份额"},
                                               "price": {"type": "number", "title": "价格"},
                                               "on": {"type": "string", "format": "date", "title": "日期"},
                                               "ok": {"type": "boolean", "title": "同意"}}}
    fields = schema_form.fields_of(schema)
    data, errors = schema_form.parse(fields, MultiDict(
        {"share": "1.5", "price": "1,250,000.50", "on": "2026-13-01", "ok": "maybe"}))
    assert data == {"price": 1250000.5} and set(errors) == {"share", "on", "ok"}
    assert errors["share"] == "份额：应为整数"


def test_a_contract_with_its_developer_and_buyers_is_drawn_as_nested_fieldsets_and_rows() -> None:
    party = {"type": "object", "required": ["name", "id_number"], "properties": {
        "name": {"type": "string", "title": "姓名"},
        "id_number": {"type": "string", "title": "证件号码", "minLength": 15}}}
    schema = {"type": "object", "properties": {
        "contract": {"type": "object", "title": "预售合同", "required": ["buyers"], "properties": {
            "contract_no": {"type": "string", "title": "合同编号"}, "developer": {**party, "title": "开发企业"},
            "buyers": {"type": "array", "title": "买受人", "minItems": 1, "items": party}}},
        "consents": {"type": "array", "title": "同意人证件号码", "items": {"type": "string"}},
        "nothing_deferrable": {"type": "array", "maxItems": 0, "items": party}}}
    fields = schema_form.fields_of(schema)
    assert [(f["name"], f["kind"]) for f in fields] == [("contract", "group"), ("consents", "lines")]
    contract = fields[0]["children"]
    assert [(c["name"], c["kind"]) for c in contract] == [
        ("contract.contract_no", "string"), ("contract.developer", "group"), ("contract.buyers", "rows")]
    form = MultiDict([("contract.contract_no", "YS-1"), ("contract.developer.name", "绿城"),
                      ("contract.developer.id_number", "913301001234567890"),
                      ("contract.buyers[0].name", "周子涵"), ("contract.buyers[0].id_number", "330106"),
                      ("consents", "330106199001011234\n\n33010619900101123X ")])
    data, errors = schema_form.read(schema, fields, form, {})
    assert data["contract"]["developer"] == {"name": "绿城", "id_number": "913301001234567890"}
    assert data["consents"] == ["330106199001011234", "33010619900101123X"]
    assert list(errors) == ["contract.buyers[0].id_number"]
    assert "至少 15 个字符" in errors["contract.buyers[0].id_number"]
    values = schema_form.values_of(fields, data)
    assert values["contract.developer.name"] == "绿城" and values["contract.buyers"][0]["name"] == "周子涵"
    assert values["consents"] == "330106199001011234\n33010619900101123X"


def test_an_empty_box_sends_the_designers_empty_default_but_not_for_other_fields() -> None:
    schema = {"type": "object", "required": ["delivery_address", "opinion"], "properties": {
        "delivery_address": {"type": "string", "title": "邮寄地址", "default": ""},
        "opinion": {"type": "string", "title": "意见"}}}
    fields = schema_form.fields_of(schema)
    data, errors = schema_form.read(schema, fields, MultiDict({"delivery_address": " ", "opinion": ""}), {})
    assert data == {"delivery_address": ""} and list(errors) == ["opinion"]


def test_json_no_database_could_keep_is_refused_beside_its_field() -> None:
    fields = schema_form.fields_of({"type": "object", "properties": {"extra": {"title": "附加数据"}}})
    assert fields[0]["kind"] == "json"
    for raw in ("NaN", "[1e999]", "[" * 5000 + "]" * 5000, '{"a": "\\u0000"}', '"\\ud800"'):
        data, errors = schema_form.parse(fields, MultiDict({"extra": raw}))
        assert data == {} and errors["extra"].startswith("附加数据：不是有效的 JSON"), raw
