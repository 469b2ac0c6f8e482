"""发证: how the applicant gets the certificate — at any office in the city (同城通办) or by mail (邮寄送达).

Mail goes by EMS with a waybill number in the UPU S10 format: two letters, an 8-digit serial, the S10
check digit and "CN" (case 2026-000123 → EA260001233CN). The number is derived from the case number, so a retried step
or a reprinted label gives the same number: case numbers "YYYY-NNNNNN" map one-to-one onto the serial
(last two digits of the year + the 6-digit counter); any other form is hashed.

Pickup offices come from `ONEWINDOW_PICKUP_OFFICES` (separated by ";" or "；"), default the Hangzhou
offices below; the first one is used when the diagram names none. A name can be given in full or by a
part that identifies one office ("西湖区").
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from handlers.registry import REGISTRY, BusinessError, Param

__all__ = ["DEFAULT_OFFICES", "arrange", "pickup_offices", "s10_check_digit", "tracking_number",
           "valid_tracking_number"]

DEFAULT_OFFICES = (
    "杭州市不动产登记服务中心（市民中心）",
    "上城区不动产登记服务点",
    "拱墅区不动产登记服务点",
    "西湖区不动产登记服务点",
    "滨江区不动产登记服务点",
    "萧山区不动产登记服务中心",
    "余杭区不动产登记服务中心",
    "临平区不动产登记服务中心",
    "钱塘区不动产登记服务点",
)

SERVICE_INDICATOR = "EA"  # UPU S10: "E" + a letter is EMS
_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_TRACKING_RE = re.compile(r"^[A-Z]{2}(\d{8})(\d)CN$")
_CASE_RE = re.compile(r"^\d{2}(\d{2})-(\d{6})$")
_PLACE_RE = re.compile(r"[省市区县镇乡村]")
_STREET_RE = re.compile(r"[路街道巷弄号幢栋室院]|小区|大厦")
_METHODS = {
    "pickup": "pickup", "自取": "pickup", "现场领取": "pickup", "窗口领取": "pickup", "领取": "pickup",
    "mail": "mail", "邮寄": "mail", "邮寄送达": "mail", "ems": "mail",
}


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial (weights 8 6 4 2 3 5 9 7, modulus 11)."""
    if not re.fullmatch(r"\d{8}", serial):
        raise ValueError(f"an S10 serial is 8 digits, got {serial!r}")
    check = 11 - sum(int(d) * w for d, w in zip(serial, _WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def tracking_number(case_number: str) -> str:
    """The EMS waybill number of a case's certificate: the same case always gets the same number."""
    m = _CASE_RE.match(case_number.strip())
    if m:
        serial = m[1] + m[2]
    else:
        digest = hashlib.sha256(case_number.strip().encode("utf-8")).digest()
        serial = f"{int.from_bytes(digest[:8], 'big') % 10**8:08d}"
    return f"{SERVICE_INDICATOR}{serial}{s10_check_digit(serial)}CN"


def valid_tracking_number(number: str) -> bool:
    """Two letters, 8 digits, the right S10 check digit, CN."""
    m = _TRACKING_RE.match(number or "")
    return bool(m) and s10_check_digit(m[1]) == int(m[2])


def pickup_offices(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    configured = [o.strip() for o in re.split(r"[;；]", env.get("ONEWINDOW_PICKUP_OFFICES", "")) if o.strip()]
    return configured or list(DEFAULT_OFFICES)


def _office(wanted: str) -> str:
    offices = pickup_offices()
    wanted = wanted.strip()
    if not wanted:
        return offices[0]
    if wanted in offices:
        return wanted
    matches = [o for o in offices if wanted in o]
    if len(matches) == 1:
        return matches[0]
    raise BusinessError("DELIVERY_OFFICE_UNKNOWN",
                        f"领证地点“{wanted}”{'不唯一' if matches else '不是本市的登记服务窗口'}；"
                        f"可选：{'、'.join(matches or offices)}", office=wanted)


@REGISTRY.register("delivery.arrange", [
    Param("method", "str", description="pickup (同城通办, any office in the city) or mail (邮寄送达)"),
    Param("address", "str", required=False, description="postal address, required for mail"),
    Param("office", "str", required=False, description="pickup office; the main office when empty"),
])
def arrange(ctx: Any, method: str, address: str | None = "", office: str | None = "") -> dict[str, Any]:
    """领证方式: pickup at any office in the city, or EMS mail with a tracking number."""
    kind = _METHODS.get((method or "").strip().lower())
    if kind is None:
        raise BusinessError("DELIVERY_METHOD_UNKNOWN",
                            f"领证方式“{method}”无法识别：请选择 pickup（窗口领取，同城通办）或 mail（邮寄送达）",
                            method=method)
    if kind == "pickup":
        return {"method": "pickup", "pickup_office": _office(office or ""), "address": ""}
    address = (address or "").strip()
    if not address:
        raise BusinessError("DELIVERY_ADDRESS_MISSING",
                            "选择邮寄送达，但未填写收件地址：请填写完整的邮寄地址，或改为窗口领取")
    if not (_PLACE_RE.search(address) and _STREET_RE.search(address)):
        raise BusinessError("DELIVERY_ADDRESS_INVALID",
                            f"邮寄地址“{address}”不完整：应写明省市区县及街道、门牌，"
                            f"如 杭州市西湖区文三路398号3幢1单元501室",
                            address=address)
    return {"method": "mail", "tracking_no": tracking_number(ctx.case_number), "pickup_office": "",
            "address": address}
