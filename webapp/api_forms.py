"""A task's form (its JSON Schema, deployed with the version) and checking data against it.

Completing a task through the API checks the submitted data against the task's form before the
engine sees it, so a program gets the same refusals a clerk gets on the task page (422, one
message per field, with the field's title from the form). The instance checked is the data the
task will hold afterwards for the form's own fields: the case's current values of those fields,
overlaid with what was submitted — so a field filled in by an earlier step need not be sent again,
and a form with `additionalProperties: false` judges only what was submitted.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.deployment import version_closure
from storage.models import Case, HumanTask, ProcessVersion

_TYPE_NAMES = {"string": "文本", "integer": "整数", "number": "数字", "boolean": "true 或 false",
               "object": "JSON 对象", "array": "列表", "null": "null"}
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


def _asset(s: Session, version: ProcessVersion, filename: str) -> dict[str, Any] | None:
    """A JSON file deployed with `version` or a version it calls; None if absent or not an object."""
    for member in version_closure(s, version):
        text = (member.assets or {}).get(filename)
        if text is not None:
            doc = json.loads(text)
            return doc if isinstance(doc, dict) else None
    return None


def ui_filename(schema_filename: str) -> str:
    """Where a form's UI schema lives when the BPMN names none: forms/x.json -> forms/x.ui.json."""
    stem = schema_filename[:-5] if schema_filename.endswith(".json") else schema_filename
    return f"{stem}.ui.json"


def _case_version(s: Session, case_id: int) -> ProcessVersion | None:
    case = s.get(Case, case_id)
    return s.get(ProcessVersion, case.process_version_id) if case is not None else None


def task_form(s: Session, ht: HumanTask | Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema of the task's form (a HumanTask or the engine's task dict), from the case's
    version or a version it calls; None if the task has no form (or its file is missing, which
    deployment validation prevents)."""
    form = ht["form"] if isinstance(ht, Mapping) else ht.form
    if not form:
        return None
    case_id = ht["case_id"] if isinstance(ht, Mapping) else ht.case_id
    found = s.execute(select(ProcessVersion.id, ProcessVersion.sha256)
                      .join(Case, Case.process_version_id == ProcessVersion.id).where(Case.id == case_id)).first()
    if found is None:
        return None
    key = (found.id, found.sha256, form)
    if key not in _FORMS:
        version = s.get(ProcessVersion, found.id)
        if len(_FORMS) >= _FORMS_KEPT:
            _FORMS.clear()
        _FORMS[key] = _asset(s, version, form) if version is not None else None
    schema = _FORMS[key]
    return copy.deepcopy(schema) if schema is not None else None


# Each API completion checks its data against the task's form: the forms of a deployed version
# (which never changes — a redeploy is a new version) are read and parsed once per process, by
# version id and hash (ids alone repeat across databases emptied and filled again).
_FORMS: dict[tuple[int, str, str], dict[str, Any] | None] = {}
_FORMS_KEPT = 1024


def task_ui(s: Session, ht: HumanTask) -> dict[str, Any]:
    """The task form's UI schema (react-jsonschema-form conventions), or {}."""
    if not ht.form:
        return {}
    version = _case_version(s, ht.case_id)
    if version is None:
        return {}
    for member in version_closure(s, version):
        named = ((member.meta or {}).get("ui_forms") or {}).get(ht.bpmn_id)
        if named and named in (member.assets or {}):
            return _asset(s, version, named) or {}
    return _asset(s, version, ui_filename(ht.form)) or {}


def start_form(s: Session, process_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The start form (JSON Schema, UI schema) of the latest version of `process_id`; (None, {})
    if it has none or the process is not deployed."""
    version = s.scalars(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                        .order_by(ProcessVersion.version.desc()).limit(1)).first()
    if version is None:
        return None, {}
    meta = version.meta or {}
    name = meta.get("start_form")
    if not name:
        return None, {}
    schema = _asset(s, version, name)
    ui_name = meta.get("start_ui") or ui_filename(name)
    return schema, (_asset(s, version, ui_name) or {})


def form_errors(schema: dict[str, Any], data: dict[str, Any], current: dict[str, Any]) -> list[dict[str, str]]:
    """Every way the submitted `data` (over the `current` case data) fails the form, readably."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    instance = {k: current[k] for k in props if k in current}
    instance.update(data)
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.path)), e.message)):
        path = [str(p) for p in err.absolute_path]
        if err.validator == "required":
            found = _REQUIRED.match(err.message)
            if found:
                path.append(found.group(1))
        out.append({"field": ".".join(path), "message": _message(err, _title(schema, path))})
    return out


def _title(schema: dict[str, Any], path: list[str]) -> str:
    node: Any = schema
    for part in path:
        props = node.get("properties") if isinstance(node, dict) else None
        if isinstance(props, dict) and part in props:
            node = props[part]
        elif isinstance(node, dict) and isinstance(node.get("items"), dict):
            node = node["items"]
        else:
            node = None
            break
    title = node.get("title") if isinstance(node, dict) else None
    name = ".".join(path)
    return f"{title}（{name}）" if title and name else (title or name or "表单")


def _message(err: jsonschema.ValidationError, label: str) -> str:
    v, value = err.validator, err.validator_value
    if v == "required":
        return f"{label}：必填"
    if v == "type":
        kinds = value if isinstance(value, list) else [value]
        return f"{label}：应为{'或'.join(_TYPE_NAMES.get(k, str(k)) for k in kinds)}"
    if v == "enum":
        return f"{label}：应为以下之一：{'、'.join(json.dumps(x, ensure_ascii=False) for x in value)}"
    if v in ("oneOf", "anyOf") and all(isinstance(o, dict) and "const" in o for o in value or ()):
        return f"{label}：应为列表中的一项（{'、'.join(str(o.get('title') or o['const']) for o in value)}）"
    if v == "const":
        return f"{label}：应为 {json.dumps(value, ensure_ascii=False)}"
    if v == "minLength":
        return f"{label}：不能为空" if value == 1 else f"{label}：至少 {value} 个字符"
    if v == "maxLength":
        return f"{label}：最多 {value} 个字符"
    if v in ("minimum", "exclusiveMinimum"):
        return f"{label}：不能小于{'或等于' if v == 'exclusiveMinimum' else ''} {value}"
    if v in ("maximum", "exclusiveMaximum"):
        return f"{label}：不能大于{'或等于' if v == 'exclusiveMaximum' else ''} {value}"
    if v == "pattern":
        return f"{label}：格式不对"
    if v == "format":
        return f"{label}：格式不对（应为 {value}）"
    if v == "additionalProperties":
        return f"{label}：有表单中没有的字段（{err.message}）"
    if v in ("minItems", "maxItems"):
        return f"{label}：{'至少' if v == 'minItems' else '最多'} {value} 项"
    return f"{label}：{err.message}"
