"""HTML forms drawn from a task's JSON Schema (and its UI schema), and the submitted form read back.

A process designer describes a form once, as JSON Schema beside the BPMN; the task page draws it
and the server checks the result against the same schema (webapp.api_forms.form_errors), so the
page and the JSON API refuse the same things. We draw a subset that covers registration forms
without JavaScript (react-jsonschema-form would need a JS build and still a server-side check):

| schema | drawn as | field name(s) in the posted form |
| string / number / integer | text input (date input for format: date; textarea by ui:widget) | `name` |
| boolean | 是 / 否 radios | `name` |
| enum, or oneOf of {const, title} | select (radios by ui:widget) | `name` (JSON for non-strings) |
| array of choices | checkboxes | `name`, repeated |
| array of small objects | rows of a table, two empty rows to add | `name[i].sub` |
| object of simple properties | fieldset | `name.sub` |
| anything else | JSON textarea | `name` |

UI schema keys honoured (rjsf conventions): ui:order, ui:widget (textarea, radio, checkboxes,
hidden), ui:help, ui:placeholder, ui:title.
"""
from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from flask_babel import gettext as _

SPARE_ROWS = 2
MAX_DEPTH = 2  # a form, an object in it, an object or table in that
MAX_ROWS = 50
_ROW_FIELD = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>\d{1,3})\]\.(?P<sub>.+)$")


def _choices(spec: dict[str, Any]) -> list[tuple[Any, str]] | None:
    """(value, label) pairs of a single choice, or None if the property is not one."""
    if isinstance(spec.get("oneOf"), list) and spec["oneOf"] and all(
            isinstance(o, dict) and "const" in o for o in spec["oneOf"]):
        return [(o["const"], str(o.get("title") or o["const"])) for o in spec["oneOf"]]
    if isinstance(spec.get("enum"), list):
        names = spec.get("enumNames") if isinstance(spec.get("enumNames"), list) else []
        return [(v, str(names[i]) if i < len(names) else str(v)) for i, v in enumerate(spec["enum"])]
    return None


def _type(spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _ordered(props: dict[str, Any], ui: dict[str, Any]) -> list[str]:
    order = ui.get("ui:order") if isinstance(ui.get("ui:order"), list) else []
    named = [n for n in order if n in props]
    rest = [n for n in props if n not in named]
    if "*" in order:
        star = order.index("*")
        before = [n for n in order[:star] if n in props]
        after = [n for n in order[star + 1:] if n in props]
        return before + [n for n in props if n not in before and n not in after] + after
    return named + rest


def fields_of(schema: dict[str, Any], ui: dict[str, Any] | None = None, prefix: str = "",
              depth: int = 0) -> list[dict[str, Any]]:
    """The form's fields in drawing order; each a dict with name, label, kind, required, help,
    placeholder, options ([(value, label)]), children (for group and rows), max_rows."""
    ui = ui if isinstance(ui, dict) else {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or ())
    out = []
    for key in _ordered(props, ui):
        spec = props[key] if isinstance(props[key], dict) else {}
        hints = ui.get(key) if isinstance(ui.get(key), dict) else {}
        widget = hints.get("ui:widget")
        if widget == "hidden":
            continue
        name = f"{prefix}{key}"
        field: dict[str, Any] = {
            "name": name, "key": key, "label": str(hints.get("ui:title") or spec.get("title") or key),
            "required": key in required, "help": str(hints.get("ui:help") or spec.get("description") or ""),
            "placeholder": str(hints.get("ui:placeholder") or ""), "options": [], "children": [], "schema": True,
            "default": spec.get("default"),
        }
        kind = _type(spec)
        choices = _choices(spec)
        items = spec.get("items") if isinstance(spec.get("items"), dict) else None
        if choices is not None:
            field["kind"] = "radio" if widget == "radio" else "choice"
            field["options"] = choices
        elif kind == "boolean":
            field["kind"] = "boolean"
        elif kind == "string":
            field["kind"] = "date" if spec.get("format") == "date" else (
                "text" if widget == "textarea" else "string")
        elif kind in ("number", "integer"):
            field["kind"] = kind
        elif kind == "array" and items is not None and _choices(items) is not None:
            field["kind"] = "multi"
            field["options"] = _choices(items) or []
        elif kind == "array" and items is not None and _type(items) == "string":
            field["kind"] = "lines"
        elif (kind == "array" and items is not None and _type(items) == "object" and depth < MAX_DEPTH
              and _simple(items)):
            field["max_rows"] = min(int(spec["maxItems"]) if isinstance(spec.get("maxItems"), int) else MAX_ROWS,
                                    MAX_ROWS)
            if field["max_rows"] == 0:
                continue  # nothing can be entered
            field["kind"] = "rows"
            field["children"] = fields_of(items, hints.get("items") if isinstance(hints.get("items"), dict) else {},
                                          "", MAX_DEPTH)
        elif kind == "object" and depth < MAX_DEPTH and _drawable(spec, depth + 1):
            field["kind"] = "group"
            field["children"] = fields_of(spec, hints, f"{name}.", depth + 1)
        else:
            field["kind"] = "json"
        out.append(field)
    return out


def _drawable(schema: dict[str, Any], depth: int) -> bool:
    """An object whose properties are single inputs, or (above the deepest level) tables of
    single inputs and objects of them — e.g. a contract with its buyers."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return False
    for spec in props.values():
        if not isinstance(spec, dict):
            return False
        if _choices(spec) is not None or _type(spec) in ("string", "number", "integer", "boolean"):
            continue
        items = spec.get("items") if isinstance(spec.get("items"), dict) else None
        if _type(spec) == "array" and items is not None and (
                _choices(items) is not None or _type(items) == "string"
                or (depth < MAX_DEPTH and _type(items) == "object" and _simple(items))):
            continue
        if _type(spec) == "object" and depth < MAX_DEPTH and _drawable(spec, depth + 1):
            continue
        return False
    return True


def _simple(schema: dict[str, Any]) -> bool:
    """An object whose properties are all drawn as single inputs (no deeper nesting)."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return False
    for spec in props.values():
        if not isinstance(spec, dict):
            return False
        if _choices(spec) is None and _type(spec) not in ("string", "number", "integer", "boolean"):
            return False
    return True


# ------------------------------------------------------------------------------ values to draw

def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def choice_value(value: Any) -> str:
    """How a choice's value travels in the form: strings as they are, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def values_of(fields: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """Form values (strings; lists for checkboxes; row lists for tables) from data, for drawing."""
    values: dict[str, Any] = {}
    for f in fields:
        value = data.get(f["key"]) if isinstance(data, dict) else None
        if value is None:
            value = f.get("default")
        if f["kind"] == "group":
            values.update(values_of(f["children"], value if isinstance(value, dict) else {}))
        elif f["kind"] == "rows":
            rows = [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []
            values[f["name"]] = [{c["key"]: _draw_one(c, r.get(c["key"])) for c in f["children"]} for r in rows]
        elif f["kind"] == "multi":
            values[f["name"]] = [choice_value(v) for v in value] if isinstance(value, list) else []
        elif f["kind"] == "lines":
            values[f["name"]] = "\n".join(str(v) for v in value) if isinstance(value, list) else ""
        elif value is not None:
            values[f["name"]] = _draw_one(f, value)
    return values


def _draw_one(f: dict[str, Any], value: Any) -> str:
    if value is None:
        return ""
    if f["kind"] in ("choice", "radio"):
        return choice_value(value)
    return _text(value)


def submitted_values(fields: list[dict[str, Any]], form: Any) -> dict[str, Any]:
    """What the clerk typed, to draw again after a refusal (nothing lost)."""
    values: dict[str, Any] = {}
    for f in fields:
        if f["kind"] == "group":
            values.update(submitted_values(f["children"], form))
        elif f["kind"] == "multi":
            values[f["name"]] = form.getlist(f["name"])
        elif f["kind"] == "rows":
            values[f["name"]] = [row for _i, row in _posted_rows(f, form)]
        else:
            values[f["name"]] = form.get(f["name"], "")
    return values


def rows_to_draw(f: dict[str, Any], values: dict[str, Any]) -> list[dict[str, str]]:
    rows = list(values.get(f["name"]) or [])
    spare = max(0, min(SPARE_ROWS, f["max_rows"] - len(rows)))
    return rows + [{} for _ in range(spare)]


# ------------------------------------------------------------------------------ reading the post

def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} 不是 JSON 数值")


def strict_json(raw: str) -> Any:
    """JSON a clerk typed, refused (ValueError, readable) if no database could keep it: NaN or
    Infinity, numbers beyond a float, nesting too deep, NUL characters, lone surrogates."""
    from webapp.api_support import check_json

    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("嵌套太深") from None
    problems = check_json(value)
    if problems:
        first = problems[0]
        raise ValueError(f"{first['field']}：{first['message']}" if first["field"] else first["message"])
    return value


def _posted_rows(f: dict[str, Any], form: Any) -> list[tuple[int, dict[str, str]]]:
    rows: dict[int, dict[str, str]] = {}
    for key in form.keys():
        m = _ROW_FIELD.match(key)
        if m and m.group("name") == f["name"]:
            index = int(m.group("index"))
            if index < MAX_ROWS:
                rows.setdefault(index, {})[m.group("sub")] = (form.get(key) or "").strip()
    return [(i, rows[i]) for i in sorted(rows) if any(rows[i].values())]


def _one(f: dict[str, Any], raw: str, errors: dict[str, str], where: str) -> tuple[bool, Any]:
    """(present, value) of one simple input; a message in errors[where] if it cannot be read."""
    kind, label = f["kind"], f["label"]
    if raw == "":
        return False, None
    if kind == "boolean":
        if raw not in ("true", "false"):
            errors[where] = _("%(label)s：请选择是或否", label=label)
            return False, None
        return True, raw == "true"
    if kind in ("number", "integer"):
        try:
            number = float(raw.replace(",", ""))
        except ValueError:
            errors[where] = _("%(label)s：应为数字", label=label)
            return False, None
        if number != number or number in (float("inf"), float("-inf")):
            errors[where] = _("%(label)s：应为数字", label=label)
            return False, None
        if kind == "integer":
            if not number.is_integer():
                errors[where] = _("%(label)s：应为整数", label=label)
                return False, None
            return True, int(number)
        return True, int(number) if number.is_integer() and "." not in raw else number
    if kind in ("choice", "radio"):
        for value, _label in f["options"]:
            if choice_value(value) == raw:
                return True, value
        errors[where] = _("%(label)s：请从列表中选择", label=label)
        return False, None
    if kind == "date":
        try:
            return True, date.fromisoformat(raw).isoformat()
        except ValueError:
            errors[where] = _("%(label)s：日期应为 YYYY-MM-DD", label=label)
            return False, None
    if kind == "json":
        try:
            return True, strict_json(raw)
        except ValueError as err:
            errors[where] = _("%(label)s：不是有效的 JSON（%(error)s）", label=label, error=str(err))
            return False, None
    return True, raw


def parse(fields: list[dict[str, Any]], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted form as data for the engine, and a message per field (by field name) that
    cannot be read. Required fields and other constraints are left to the schema check."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        kind, name = f["kind"], f["name"]
        if kind == "group":
            inner, inner_errors = parse(f["children"], form)
            errors.update(inner_errors)
            data[f["key"]] = inner
        elif kind == "multi":
            chosen = []
            for raw in form.getlist(name):
                present, value = _one({**f, "kind": "choice"}, raw.strip(), errors, name)
                if present and value not in chosen:
                    chosen.append(value)
            data[f["key"]] = chosen
        elif kind == "lines":
            data[f["key"]] = [line.strip() for line in (form.get(name) or "").splitlines() if line.strip()]
        elif kind == "rows":
            rows = []
            for position, (_index, posted) in enumerate(_posted_rows(f, form)):
                row: dict[str, Any] = {}
                for child in f["children"]:
                    present, value = _one(child, posted.get(child["key"], ""), errors,
                                          f"{name}[{position}].{child['key']}")
                    if present:
                        row[child["key"]] = value
                rows.append(row)
            data[f["key"]] = rows
        else:
            raw = (form.get(name) or "").strip()
            present, value = _one(f, raw, errors, name)
            if present:
                data[f["key"]] = value
            elif raw == "" and f.get("default") == "" and kind in ("string", "text"):
                # an empty box where the form's designer made "" the default (e.g. no mailing
                # address for pickup): the value "", not a missing field
                data[f["key"]] = ""
    return data, errors


def error_field(path: str, fields: list[dict[str, Any]]) -> str:
    """The form field a schema error's path (e.g. `deferred.0.promised_by`, `facts.agent`,
    `contract.buyers.1.name`) belongs to, so its message is drawn beside that field."""
    parts = path.split(".") if path else []
    if not parts:
        return ""
    by_key = {f["key"]: f for f in fields}
    top = by_key.get(parts[0])
    if top is None:
        return parts[0]
    if top["kind"] == "rows" and len(parts) >= 3 and parts[1].isdigit():
        return f"{top['name']}[{parts[1]}].{parts[2]}"
    if top["kind"] == "group" and len(parts) >= 2:
        return error_field(".".join(parts[1:]), top["children"]) or top["name"]
    return top["name"]


def read(schema: dict[str, Any], fields: list[dict[str, Any]], form: Any,
         current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted form as data, and every message by field: unreadable input first, then what
    the JSON Schema refuses (over the case's `current` values of the form's fields)."""
    from webapp.api_forms import form_errors

    data, errors = parse(fields, form)
    if not errors:
        for e in form_errors(schema, data, current):
            where = error_field(e["field"], fields)
            errors[where] = f"{errors[where]}；{e['message']}" if where in errors else e["message"]
    return data, errors
