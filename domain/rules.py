"""Legal checks at review 审核, as named rules evaluated against the register.

Each rule has a code, a severity and a legal basis, and says in Chinese what a reviewer needs
to know. `evaluate` runs the rules that apply to a business kind for one unit and one set of
applicants and returns the findings as data, with a `blocked` flag a diagram can route on:

    result = evaluate(session, "transfer", unit_number, applicants, consents=[...])
    case_data["rule_check"] = result.to_data()      # {"blocked": False, "warnings": [...], ...}

Severities:
- block  — the registration must not be made (不予登记) until the cause is removed;
- warn   — it may be made, but the reviewer must act (tell the applicant, get a written
           acknowledgement) and say so in the opinion;
- notice — it will be made; something follows from it (a mortgagee to notify, a pre-notice
           that converts).

Encumbrances on the parcel's land-only unit (the first 19 characters + W00000000) count for
every unit on the parcel: a seizure of the land is a seizure of the flats on it. Findings say
which right they are about (right_id) and whether it sits on the unit or on the parcel.

Applicants are given with a role: "obligor" 义务人 (the seller, the mortgagor, the developer —
whoever disposes and so must be the current holder) or "holder" 权利人 (the buyer, the
mortgagee). Aliases such as seller/buyer/mortgagor/mortgagee are accepted; an applicant without
a role counts as an obligor, so a missing role shows up as a finding instead of passing silently.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from domain.register import (
    MORTGAGE_PRE_NOTICES,
    SALE_PRE_NOTICES,
    RightInfo,
    UnitInfo,
    current_rights,
    get_unit,
)
from domain.unit_number import UnitNumberError
from domain.unit_number import parse as parse_unit_number

__all__ = [
    "BLOCK",
    "BUSINESS_KINDS",
    "NOTICE",
    "RULES",
    "WARN",
    "Applicant",
    "Evaluation",
    "Finding",
    "Rule",
    "evaluate",
    "rules_for",
]

BLOCK, WARN, NOTICE = "block", "warn", "notice"
SEVERITY_LABELS = {BLOCK: "不予登记", WARN: "警示", NOTICE: "提示"}

BUSINESS_KINDS = {
    "transfer": "转移登记",
    "mortgage": "抵押权登记",
    "pre_notice": "预告登记",
    "seizure": "查封登记",
    "release_seizure": "解封登记",
    "objection": "异议登记",
    "mortgage_cancel": "抵押权注销登记",
    "pre_notice_cancel": "预告登记注销",
    "first_registration": "首次登记",
}
# businesses that dispose of the unit: what seizures, pre-notices and objections restrict
DISPOSALS = frozenset({"transfer", "mortgage", "pre_notice"})

_OBLIGOR_ROLES = {"obligor", "义务人", "seller", "transferor", "mortgagor", "developer", "出卖人", "抵押人"}
_HOLDER_ROLES = {"holder", "权利人", "buyer", "transferee", "mortgagee", "买受人", "抵押权人"}


def _norm_id(id_number: Any) -> str:
    return "".join(str(id_number).split()).upper()


@dataclass(frozen=True)
class Applicant:
    """A party to the application, as the rules see it."""

    name: str
    id_number: str
    id_type: str = "居民身份证"
    role: str = "obligor"

    @classmethod
    def of(cls, value: Applicant | Mapping[str, Any]) -> Applicant:
        if isinstance(value, Applicant):
            return value
        role = str(value.get("role") or "obligor").strip()
        if role in _OBLIGOR_ROLES:
            role = "obligor"
        elif role in _HOLDER_ROLES:
            role = "holder"
        else:
            raise ValueError(f"申请人角色应为 obligor（义务人）或 holder（权利人），实为{role!r}")
        return cls(name=str(value.get("name") or "").strip(), id_number=str(value.get("id_number") or "").strip(),
                   id_type=str(value.get("id_type") or "居民身份证"), role=role)

    @property
    def key(self) -> str:
        return _norm_id(self.id_number)


@dataclass(frozen=True)
class Finding:
    """One thing a rule found: what (code), how serious, the message, and the right it is about."""

    code: str
    severity: str
    message: str
    basis: str
    right_id: int | None = None
    unit_number: str | None = None
    on_parcel: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "severity_label": SEVERITY_LABELS[self.severity],
                "message": self.message, "basis": self.basis, "right_id": self.right_id,
                "unit_number": self.unit_number, "on_parcel": self.on_parcel, "detail": dict(self.detail)}


@dataclass(frozen=True)
class Evaluation:
    """All findings for one request, with the summaries a handler stores and a diagram routes on."""

    business: str
    unit_number: str
    findings: tuple[Finding, ...]

    @property
    def blocked(self) -> bool:
        return any(f.severity == BLOCK for f in self.findings)

    @property
    def blocks(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == BLOCK)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARN)

    @property
    def notices(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == NOTICE)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.code for f in self.findings))

    def to_data(self) -> dict[str, Any]:
        """JSON for case data: blocked/has_warnings for gateways, messages for the reviewer's page."""
        return {
            "business": self.business,
            "unit_number": self.unit_number,
            "blocked": self.blocked,
            "has_warnings": bool(self.warnings),
            "blocks": [f.message for f in self.blocks],
            "warnings": [f.message for f in self.warnings],
            "notices": [f.message for f in self.notices],
            "codes": list(self.codes),
            "findings": [f.to_data() for f in self.findings],
        }


@dataclass(frozen=True)
class Context:
    """What the rules look at: the request and the register's current state for the unit and its parcel."""

    business: str
    unit_number: str
    applicants: tuple[Applicant, ...]
    consents: frozenset[str]
    unit: UnitInfo | None
    unit_error: str | None
    rights: tuple[RightInfo, ...]
    land_ownership: RightInfo | None

    @property
    def business_label(self) -> str:
        return BUSINESS_KINDS.get(self.business, self.business)

    def of_kind(self, kind: str) -> list[RightInfo]:
        return [r for r in self.rights if r.kind == kind]

    @property
    def ownership(self) -> RightInfo | None:
        return next((r for r in self.rights if r.kind == "ownership" and r.unit_number == self.unit_number), None)

    @property
    def obligors(self) -> list[Applicant]:
        return [a for a in self.applicants if a.role == "obligor"]

    @property
    def acquirers(self) -> list[Applicant]:
        return [a for a in self.applicants if a.role == "holder"]

    def where(self, right: RightInfo) -> str:
        if right.unit_number == self.unit_number:
            return "该不动产单元"
        return f"该不动产单元所在宗地（{right.unit_number[:19]}）"

    def finding(self, rule: Rule, message: str, *, right: RightInfo | None = None, severity: str | None = None,
                basis: str | None = None, **detail: Any) -> Finding:
        return Finding(code=rule.code, severity=severity or rule.severity, message=message,
                       basis=basis or rule.basis, right_id=right.id if right else None,
                       unit_number=right.unit_number if right else self.unit_number,
                       on_parcel=bool(right and right.unit_number != self.unit_number), detail=detail)


@dataclass(frozen=True)
class Rule:
    """A named legal check: applies to some business kinds; `check` yields its findings."""

    code: str
    title: str
    severity: str
    basis: str
    businesses: frozenset[str]
    check: Callable[[Rule, Context], Iterable[Finding]]
    needs_unit: bool = True

    def applies_to(self, business: str) -> bool:
        return business in self.businesses


# -- the rules -----------------------------------------------------------------------------------


def _unit_valid(rule: Rule, ctx: Context) -> Iterable[Finding]:
    if ctx.unit_error:
        yield ctx.finding(rule, ctx.unit_error)


def _unit_registered(rule: Rule, ctx: Context) -> Iterable[Finding]:
    if not ctx.unit_error and ctx.unit is None:
        yield ctx.finding(rule, f"不动产单元{ctx.unit_number}不在登记簿中，请核对不动产单元号或先录入楼盘表/地籍数据")


def _seized(rule: Rule, ctx: Context) -> Iterable[Finding]:
    what = {"transfer": "转让（办理转移登记）", "mortgage": "设定抵押", "pre_notice": "办理预告登记"}[ctx.business]
    basis = {"transfer": "城市房地产管理法第三十八条",
             "mortgage": "民法典第三百九十九条",
             "pre_notice": "城市房地产管理法第三十八条"}[ctx.business]
    for s in ctx.of_kind("seizure"):
        court = s.details.get("court", "")
        kind = "轮候查封" if s.queued else str(s.details.get("seizure_kind") or "查封")
        term = f"，查封期限{s.details.get('term_start')}至{s.details.get('term_end')}" if s.details.get("term_end") \
            else ""
        yield ctx.finding(
            rule, f"{ctx.where(s)}已被{court}{kind}（{s.document_number}{term}），依法不得{what}（{basis}）",
            right=s, basis=basis, court=court, document_number=s.document_number, queued=s.queued)


def _pre_notice_consent(rule: Rule, ctx: Context) -> Iterable[Finding]:
    acquirer_ids = {a.key for a in ctx.acquirers}
    for p in ctx.of_kind("pre_notice"):
        kind = str(p.details.get("pre_notice_kind") or "预告登记")
        holders = p.holder_ids()
        names = p.holder_names
        converts = holders and holders <= acquirer_ids and (
            (ctx.business == "transfer" and kind in SALE_PRE_NOTICES)
            or (ctx.business == "mortgage" and kind in MORTGAGE_PRE_NOTICES))
        own_act = holders and holders <= {a.key for a in ctx.obligors}
        if converts:
            yield ctx.finding(rule, f"{ctx.where(p)}存在{kind}，申请人即预告登记权利人（{names}），"
                                    f"本次{ctx.business_label}后预告登记转为本登记", right=p, severity=NOTICE,
                              converts=True)
        elif own_act:
            # the pre-notice holders dispose themselves, e.g. the buyer of an off-plan flat mortgages
            # the expected right to the bank (预售商品房抵押权预告): their application is their consent
            yield ctx.finding(rule, f"{ctx.where(p)}存在{kind}，预告登记权利人（{names}）即本次申请的义务人，"
                                    f"视为同意", right=p, severity=NOTICE, own_act=True)
        elif holders and holders <= ctx.consents:
            yield ctx.finding(rule, f"{ctx.where(p)}存在{kind}（权利人：{names}），申请已附预告登记权利人的书面同意，"
                                    f"可办理{ctx.business_label}（民法典第二百二十一条）", right=p, severity=NOTICE,
                              consent=True)
        else:
            missing = [h.name for h in p.holders if _norm_id(h.id_number) not in ctx.consents]
            yield ctx.finding(rule, f"{ctx.where(p)}存在{kind}（权利人：{names}），未经预告登记权利人"
                                    f"{'、'.join(missing)}书面同意，不得办理{ctx.business_label}（民法典第二百二十一条）",
                              right=p, missing_consent=missing)


def _mortgage_travels(rule: Rule, ctx: Context) -> Iterable[Finding]:
    for m in ctx.of_kind("mortgage"):
        bank = m.holder_names
        mode = m.details.get("mode_label", "抵押")
        amount = m.details.get("amount")
        yield ctx.finding(
            rule, f"{ctx.where(m)}已设定{mode}（抵押权人：{bank}，债权数额{amount}元），可以转让，"
                  f"抵押权不受影响、随不动产一并转移；办理后须通知抵押权人{bank}（民法典第四百零六条）",
            right=m, mortgagee=[h.to_data() for h in m.holders], amount=amount)


def _existing_mortgage(rule: Rule, ctx: Context) -> Iterable[Finding]:
    for m in ctx.of_kind("mortgage"):
        yield ctx.finding(
            rule, f"{ctx.where(m)}已设定{m.details.get('mode_label', '抵押')}（抵押权人：{m.holder_names}，"
                  f"债权数额{m.details.get('amount')}元），本次抵押权顺位在后，按登记先后清偿（民法典第四百一十四条）",
            right=m)


def _objection(rule: Rule, ctx: Context) -> Iterable[Finding]:
    for o in ctx.of_kind("objection"):
        suit = o.details.get("suit")
        until = "申请人已起诉，异议登记持续有效" if suit else f"申请人如在{o.lapses_on}前未起诉，异议登记失效"
        yield ctx.finding(
            rule, f"{ctx.where(o)}存在异议登记（申请人：{o.holder_names}，异议事项：{o.details.get('reason', '')}；"
                  f"{until}）。应书面告知申请人，申请人提交知悉异议登记并自担风险的书面承诺后方可继续办理"
                  f"（民法典第二百二十条，不动产登记暂行条例实施细则第八十四条）",
            right=o, suit=bool(suit))


def _disposer_right(ctx: Context) -> RightInfo | None:
    """The right whose holders must dispose.

    Normally the unit's current ownership. For a pre-notice: if the obligors hold a current sale
    pre-notice on the unit, that one (the buyer of an off-plan flat pledging the expected right,
    预售商品房抵押权预告); else the unit's ownership; else, for a flat sold off-plan that has no
    ownership yet, the land use right on the parcel's land-only unit (the developer's).
    """
    if ctx.business == "pre_notice":
        obligors = {a.key for a in ctx.obligors}
        for p in ctx.of_kind("pre_notice"):
            if p.unit_number == ctx.unit_number and p.details.get("pre_notice_kind") in SALE_PRE_NOTICES \
                    and p.holder_ids() & obligors:
                return p
    if ctx.ownership is not None:
        return ctx.ownership
    if ctx.business == "pre_notice":
        return ctx.land_ownership
    return None


def _no_current_ownership(rule: Rule, ctx: Context) -> Iterable[Finding]:
    if _disposer_right(ctx) is None:
        extra = "，所在宗地也没有现势建设用地使用权登记" if ctx.business == "pre_notice" else ""
        yield ctx.finding(rule, f"该不动产单元没有现势所有权登记{extra}，无人可处分，不能办理{ctx.business_label}"
                                f"（不动产登记暂行条例第二十二条）")


def _applicant_not_holder(rule: Rule, ctx: Context) -> Iterable[Finding]:
    right = _disposer_right(ctx)
    if right is None:
        return
    holders = {_norm_id(h.id_number): h for h in right.holders}
    owners = "、".join(f"{h.name}（{h.id_number}）" for h in right.holders)
    if not ctx.obligors:
        yield ctx.finding(rule, f"申请人中没有现登记的权利人（义务人）；现权利人：{owners}", right=right)
        return
    for a in ctx.obligors:
        if a.key not in holders:
            yield ctx.finding(rule, f"申请人{a.name}（{a.id_number}）不是该不动产单元现登记的权利人，无权处分；"
                                    f"现权利人：{owners}", right=right, applicant=a.name, id_number=a.id_number)


def _holder_not_applying(rule: Rule, ctx: Context) -> Iterable[Finding]:
    right = _disposer_right(ctx)
    if right is None or not ctx.obligors:
        return
    applying = {a.key for a in ctx.obligors}
    missing = [h for h in right.holders if _norm_id(h.id_number) not in applying]
    if not missing:
        return
    names = "、".join(f"{h.name}（{h.share_label}）" for h in missing)
    if all(h.share_mode == "share" for h in right.holders):
        yield ctx.finding(rule, f"按份共有人{names}未作为申请人：如仅处分申请人自己的份额可以办理；处分整个不动产须经"
                                f"占份额三分之二以上的按份共有人同意（民法典第三百零一条），请核实",
                          right=right, severity=WARN, missing=[h.name for h in missing])
    else:
        yield ctx.finding(rule, f"现登记权利人{names}未作为申请人：共同共有或单独所有的不动产须由全体权利人申请处分"
                                f"（民法典第三百零一条，不动产登记暂行条例第十四条）",
                          right=right, missing=[h.name for h in missing])


def _seizure_queued(rule: Rule, ctx: Context) -> Iterable[Finding]:
    seizures = [s for s in ctx.of_kind("seizure") if s.unit_number == ctx.unit_number]
    if seizures:
        first = next((s for s in seizures if not s.queued), seizures[0])
        yield ctx.finding(rule, f"该不动产单元已被{first.details.get('court', '')}查封（{first.document_number}），"
                                f"本次查封将登记为轮候查封，排第{len(seizures)}位，在先的查封解除后自动生效"
                                f"（查封扣押冻结规定第二十六条）", right=first, position=len(seizures))


RULES: tuple[Rule, ...] = (
    Rule("invalid_unit_number", "不动产单元号格式", BLOCK, "GB/T 37346-2019 不动产单元设定与代码编制规则",
         frozenset(BUSINESS_KINDS), _unit_valid, needs_unit=False),
    Rule("unit_not_registered", "不动产单元已登记", BLOCK, "不动产登记暂行条例第八条",
         frozenset(BUSINESS_KINDS), _unit_registered, needs_unit=False),
    Rule("seized", "查封的不动产不得转让、抵押", BLOCK, "城市房地产管理法第三十八条；民法典第三百九十九条",
         DISPOSALS, _seized),
    Rule("pre_notice_consent", "预告登记后处分须经预告登记权利人同意", BLOCK, "民法典第二百二十一条",
         DISPOSALS, _pre_notice_consent),
    Rule("mortgage_travels", "抵押财产转让，抵押权随之转移并通知抵押权人", NOTICE, "民法典第四百零六条",
         frozenset({"transfer"}), _mortgage_travels),
    Rule("existing_mortgage", "已有抵押，新抵押权顺位在后", NOTICE, "民法典第四百一十四条",
         frozenset({"mortgage"}), _existing_mortgage),
    Rule("objection", "存在异议登记", WARN, "民法典第二百二十条；不动产登记暂行条例实施细则第八十四条",
         DISPOSALS, _objection),
    Rule("no_current_ownership", "有现势所有权可供处分", BLOCK, "不动产登记暂行条例第二十二条",
         DISPOSALS, _no_current_ownership),
    Rule("applicant_not_holder", "申请人须为现登记的权利人", BLOCK, "不动产登记暂行条例第十四条、第二十二条",
         DISPOSALS, _applicant_not_holder),
    Rule("holder_not_applying", "全体权利人共同申请处分", BLOCK, "民法典第三百零一条；不动产登记暂行条例第十四条",
         DISPOSALS, _holder_not_applying),
    Rule("seizure_queued", "已查封的不动产再查封为轮候查封", NOTICE, "查封扣押冻结规定第二十六条",
         frozenset({"seizure"}), _seizure_queued),
)


def rules_for(business: str) -> list[Rule]:
    """The rules evaluated for a business kind, in the order they run."""
    return [r for r in RULES if r.applies_to(business)]


def evaluate(session: Session, business: str, unit_number: str,
             applicants: Sequence[Applicant | Mapping[str, Any]] = (), *, consents: Iterable[str] = (),
             rules: Sequence[Rule] | None = None) -> Evaluation:
    """Run the rules for `business` on `unit_number` with these applicants against the register.

    `consents` are the ID numbers of pre-notice holders whose written consent to the disposal is
    in the application. Encumbrances on the parcel's land-only unit count as on the unit. Read
    only: nothing is written.
    """
    if business not in BUSINESS_KINDS:
        raise ValueError(f"业务类型应为{'、'.join(BUSINESS_KINDS)}之一，实为{business!r}")
    people = tuple(Applicant.of(a) for a in applicants)
    consent_ids = frozenset(_norm_id(c) for c in consents)
    unit: UnitInfo | None = None
    unit_error: str | None = None
    rights: tuple[RightInfo, ...] = ()
    land_ownership: RightInfo | None = None
    number = str(unit_number)
    try:
        number = parse_unit_number(unit_number).value
    except UnitNumberError as err:
        unit_error = str(err)
    if unit_error is None:
        unit = get_unit(session, number)
        if unit is not None:
            rights = tuple(current_rights(session, number, include_parcel=True))
            land = number[:19] + "W00000000"
            land_ownership = next((r for r in rights if r.kind == "ownership" and r.unit_number == land), None)
    ctx = Context(business, number, people, consent_ids, unit, unit_error, rights, land_ownership)
    findings: list[Finding] = []
    for rule in (rules if rules is not None else rules_for(business)):
        if not rule.applies_to(business):
            continue
        if rule.needs_unit and unit is None:
            continue
        findings.extend(rule.check(rule, ctx))
    return Evaluation(business, number, tuple(findings))
