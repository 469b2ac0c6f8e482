"""Register operators: legal checks at review, and the entries registration makes (登簿, 缮证).

Every write goes through the engine step's session, so the register entry, the case's progress
and its audit land in one transaction: a retried step can never register twice.
"""
from __future__ import annotations

from typing import Any

from domain import register, rules
from domain.errors import BusinessError
from handlers.registry import REGISTRY, Param


@REGISTRY.register("register.check_rules", [
    Param("business", "str"), Param("unit_number", "str"), Param("applicants", "list"),
    Param("consents", "list", required=False),
])
def check_rules(ctx: Any, business: str, unit_number: str, applicants: list[dict[str, Any]],
                consents: list[str] | None = None) -> dict[str, Any]:
    """审核规则: findings with severities; `blocked` for the diagram to route a refusal on."""
    return rules.evaluate(ctx.session, business, unit_number, applicants, consents=consents or ()).to_data()


@REGISTRY.register("register.record_transfer", [
    Param("unit_number", "str"), Param("holders", "list"), Param("reason", "str", required=False),
    Param("expected_previous", "int", required=False),
])
def record_transfer(ctx: Any, unit_number: str, holders: list[dict[str, Any]], reason: str | None = None,
                    expected_previous: int | None = None) -> dict[str, Any]:
    """转移登记: the new owners; mortgages travel with the unit and their mortgagees are listed."""
    result = register.transfer_ownership(ctx.session, unit_number, holders, case_number=ctx.case_number,
                                         now=ctx.now(), reason=reason or "买卖",
                                         expected_previous=expected_previous)
    return result.to_data()


@REGISTRY.register("register.record_mortgage", [
    Param("unit_number", "str"), Param("mortgagee", "dict"), Param("amount", "any"),
    Param("term_start", "str"), Param("term_end", "str"), Param("mode", "str", required=False),
])
def record_mortgage(ctx: Any, unit_number: str, mortgagee: dict[str, Any], amount: Any, term_start: str,
                    term_end: str, mode: str | None = None) -> dict[str, Any]:
    """抵押权登记 (一般抵押 ordinary, 最高额抵押 maximum_amount)."""
    right = register.register_mortgage(ctx.session, unit_number, mortgagee=mortgagee, amount=amount,
                                       term_start=term_start, term_end=term_end, case_number=ctx.case_number,
                                       now=ctx.now(), mode=mode or "ordinary")
    return right.to_data()


@REGISTRY.register("register.record_presale_notice", [
    Param("unit_number", "str"), Param("holders", "list"), Param("kind", "str", required=False),
    Param("obligors", "list", required=False),
])
def record_presale_notice(ctx: Any, unit_number: str, holders: list[dict[str, Any]], kind: str | None = None,
                          obligors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """预告登记 (by default 预售商品房买卖预告)."""
    right = register.register_pre_notice(ctx.session, unit_number, kind=kind or "预售商品房买卖预告",
                                         holders=holders, obligors=obligors, case_number=ctx.case_number,
                                         now=ctx.now())
    return right.to_data()


@REGISTRY.register("register.record_seizure", [
    Param("unit_number", "str"), Param("court", "str"), Param("document_number", "str"),
    Param("term_start", "str"), Param("term_end", "str"),
])
def record_seizure(ctx: Any, unit_number: str, court: str, document_number: str, term_start: str,
                   term_end: str) -> dict[str, Any]:
    """查封登记 on a court's order (queued 轮候 behind a seizure already in effect)."""
    right = register.register_seizure(ctx.session, unit_number, court=court, document_number=document_number,
                                      term_start=term_start, term_end=term_end, case_number=ctx.case_number,
                                      now=ctx.now())
    return right.to_data()


@REGISTRY.register("register.release_seizure", [
    Param("document_number", "str"), Param("unit_number", "str", required=False),
    Param("release_document_number", "str", required=False), Param("court", "str", required=False),
])
def release_seizure(ctx: Any, document_number: str, unit_number: str | None = None,
                    release_document_number: str | None = None, court: str | None = None) -> dict[str, Any]:
    """解封登记: the next queued seizure, if any, takes effect."""
    result = register.release_seizure(ctx.session, case_number=ctx.case_number, now=ctx.now(),
                                      document_number=document_number, unit_number=unit_number,
                                      release_document_number=release_document_number, court=court)
    return result.to_data()


@REGISTRY.register("register.issue_certificate", [Param("right_id", "int"), Param("kind", "str")])
def issue_certificate(ctx: Any, right_id: int, kind: str) -> dict[str, Any]:
    """缮证: number the certificate (title 不动产权证书 / registration 不动产证明), gapless per office and year."""
    cert = register.issue_certificate(ctx.session, register.Office.from_env(), kind, right_id, ctx.case_number,
                                      ctx.now())
    return cert.to_data()


def _id_key(id_number: str) -> str:
    """ID numbers compare as the register compares them: without spaces, in capitals."""
    return "".join(str(id_number).split()).upper()


def _certificate_key(number: str) -> str:
    """Certificate numbers compare without spaces and with half-width brackets (申请书常写全角括号)."""
    return "".join(str(number).split()).replace("（", "(").replace("）", ")")


@REGISTRY.register("register.cancel_mortgage", [
    Param("unit_number", "str", description="不动产单元号"),
    Param("mortgagee_id_number", "str", required=False, description="抵押权人证件号（统一社会信用代码等）"),
    Param("certificate_number", "str", required=False, description="该抵押权的不动产登记证明号"),
    Param("reason", "str", required=False, description="注销原因（默认：主债权消灭）"),
])
def cancel_mortgage(ctx: Any, unit_number: str, mortgagee_id_number: str | None = None,
                    certificate_number: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """抵押权注销登簿: the current mortgage on the unit held by this mortgagee and/or documented by this
    registration certificate ends, and its certificates are voided (收回作废).

    Each criterion given narrows the unit's current mortgages; exactly one must remain. None matching
    is BusinessError `mortgage_not_found`, several `mortgage_ambiguous` (a bank holding two mortgages on
    one unit: give the certificate number too), neither criterion given `invalid_request` — each message
    says what the register holds, so the clerk can correct the application.
    """
    given_id = _id_key(mortgagee_id_number) if mortgagee_id_number and mortgagee_id_number.strip() else None
    given_cert = _certificate_key(certificate_number) if certificate_number and certificate_number.strip() else None
    if given_id is None and given_cert is None:
        raise BusinessError("invalid_request", "注销抵押权须写明抵押权人证件号或该抵押权的不动产登记证明号")
    session = ctx.session
    mortgages = register.current_rights(session, unit_number, ["mortgage"])
    certificates = {m.id: [c.number for c in register.certificates_for_right(session, m.id) if not c.voided]
                    for m in mortgages}
    found = [m for m in mortgages
             if (given_id is None or given_id in m.holder_ids())
             and (given_cert is None or given_cert in {_certificate_key(n) for n in certificates[m.id]})]
    wanted = "、".join(part for part in (
        f"抵押权人证件号为{mortgagee_id_number.strip()}" if given_id else "",
        f"不动产登记证明号为{certificate_number.strip()}" if given_cert else "") if part)

    def describe(m: register.RightInfo) -> str:
        numbers = "、".join(certificates[m.id]) or "未记载登记证明号"
        return f"{m.holder_names}（{m.details.get('amount', '')}元，{numbers}）"

    if not found:
        held = "；".join(describe(m) for m in mortgages) or "无"
        raise BusinessError("mortgage_not_found",
                            f"不动产单元{unit_number}没有{wanted}的现势抵押权，无法注销。登记簿记载的现势抵押权：{held}。"
                            "请核对申请书与抵押权人、登记证明号是否一致", unit_number=unit_number)
    if len(found) > 1:
        raise BusinessError("mortgage_ambiguous",
                            f"不动产单元{unit_number}有{len(found)}项{wanted}的现势抵押权："
                            f"{'；'.join(describe(m) for m in found)}。请写明要注销的抵押权的不动产登记证明号",
                            unit_number=unit_number, right_ids=[m.id for m in found])
    mortgage = found[0]
    ended = register.cancel_mortgage(session, mortgage.id, case_number=ctx.case_number, now=ctx.now(),
                                     reason=reason or "抵押权注销（主债权消灭）")
    return {**ended.to_data(), "voided_certificates": certificates[mortgage.id]}
