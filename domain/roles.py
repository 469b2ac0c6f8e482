"""The office's posts. A BPMN lane is one of these; a user holds one or more."""
from __future__ import annotations

ROLES: dict[str, str] = {
    "window_clerk": "窗口受理",
    "reviewer": "审核",
    "registrar": "登簿",
    "certificate_desk": "发证",
    "supervisor": "主管",
    "admin": "系统管理员",
    "designer": "流程设计",
}

# What designers write as lane names, mapped to the role they mean.
ALIASES: dict[str, str] = {
    **{label: code for code, label in ROLES.items()},
    "受理": "window_clerk",
    "综合受理": "window_clerk",
    "审批": "reviewer",
    "登簿缮证": "registrar",
    "缮证": "registrar",
    "发证归档": "certificate_desk",
    "出证": "certificate_desk",
    "科长": "supervisor",
}


def role_for_lane(lane_id: str | None, lane_name: str | None) -> str | None:
    """The role a lane stands for, by its id or its name; None if it names no known role."""
    for candidate in (lane_id, lane_name):
        if not candidate:
            continue
        key = candidate.strip()
        if key in ROLES:
            return key
        if key in ALIASES:
            return ALIASES[key]
    return None


def role_label(code: str | None) -> str:
    return ROLES.get(code or "", code or "任何人")
