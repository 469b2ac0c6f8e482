"""A case's summary — who applied, for which unit — and the keys a clerk may search it by.

The task list and the search show the summary without opening the workflow, so the engine
refreshes it from the case data whenever a step makes new tasks wait. Process designers need
not declare anything: the parties are found where the processes and departments put them
(`applicant`, a contract's `buyers`, `mortgagors`, a court order's `court`…), and every
`id_number` anywhere in the data (both sides of a sale, the mortgagee) becomes a search key.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# where the applicant is, most specific first: data key, then the key inside it
_APPLICANT_PATHS: tuple[tuple[str, ...], ...] = (
    ("applicant",), ("applicants",), ("contract", "buyers"), ("buyers",), ("mortgagors",), ("holders",),
    ("order", "court"), ("court",), ("mortgagee",),
)
_UNIT_PATHS: tuple[tuple[str, ...], ...] = (("unit_number",), ("contract", "unit_number"), ("order", "unit_number"))
_ADDRESS_PATHS: tuple[tuple[str, ...], ...] = (("address",), ("unit", "address"), ("contract", "address"))
_MAX_DEPTH = 4
_MAX_IDS = 20
KEY_LENGTH = 200


def _at(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, dict):
        name = value.get("name")
        return [name] if isinstance(name, str) and name.strip() else []
    if isinstance(value, list):
        return [n for item in value for n in _names(item)]
    return []


def _parties(data: Any, depth: int = 0) -> Iterator[tuple[str, str | None]]:
    """(id_number, name) of every party anywhere in the data."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(data, dict):
        number = data.get("id_number")
        if isinstance(number, str) and number.strip():
            name = data.get("name")
            yield number.strip(), name.strip() if isinstance(name, str) and name.strip() else None
        for value in data.values():
            if isinstance(value, dict | list):
                yield from _parties(value, depth + 1)
    elif isinstance(data, list):
        for item in data:
            yield from _parties(item, depth + 1)


def summarize(data: dict[str, Any], business: str | None = None) -> dict[str, Any]:
    """The summary shown in task lists and search results: applicant, unit number, address,
    the parties' ID numbers and names."""
    out: dict[str, Any] = {}
    if business:
        out["business"] = business
    for path in _APPLICANT_PATHS:
        names = _names(_at(data, path))
        if names:
            out["applicant"] = "、".join(dict.fromkeys(names))
            break
    for key, paths in (("unit_number", _UNIT_PATHS), ("address", _ADDRESS_PATHS)):
        for path in paths:
            value = _at(data, path)
            if isinstance(value, str) and value.strip():
                out[key] = value.strip()
                break
    ids: dict[str, None] = {}
    names: dict[str, None] = {}
    for number, name in _parties(data):
        if len(ids) < _MAX_IDS:
            ids[number] = None
        if name and len(names) < _MAX_IDS:
            names[name] = None
    if ids:
        out["id_numbers"] = list(ids)
        out["id_number"] = next(iter(ids))
    if names:
        out["parties"] = list(names)
    return out


def merged(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What the starter gave stays unless the data now says otherwise; lists grow."""
    out = dict(old or {})
    for key, value in new.items():
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        else:
            out[key] = value
    return out


def normalize_key(text: str) -> str:
    return text.strip().upper()[:KEY_LENGTH]


def search_keys(case_number: str, summary: dict[str, Any]) -> list[str]:
    """Every text a clerk may type to find this case exactly (or by its beginning)."""
    keys: list[str] = [case_number]
    for field in ("unit_number", "id_number", "applicant"):
        value = summary.get(field)
        if isinstance(value, str):
            keys.append(value)
    for field in ("id_numbers", "parties"):
        values = summary.get(field)
        if isinstance(values, list):
            keys.extend(v for v in values if isinstance(v, str))
    applicant = summary.get("applicant")
    if isinstance(applicant, str) and "、" in applicant:
        keys.extend(applicant.split("、"))
    return _unique(normalize_key(k) for k in keys if k and k.strip())


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
