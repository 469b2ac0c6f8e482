"""Rights that end by themselves, ended by the worker's upkeep: an objection not followed by a
suit, a seizure whose term ran out without renewal (the queued one then takes effect)."""
from __future__ import annotations

from datetime import datetime, timedelta

from domain import register
from domain.clock import SHANGHAI
from engine import Engine
from webapp.wiring import register_upkeep

UNIT = "330106001001GB00001F00010001"
OWNER = {"name": "张伟", "id_number": "330106199001011234"}


def setup_unit(engine: Engine) -> None:
    now = engine.clock.now()
    with engine.db.write() as s:
        register.add_unit(s, UNIT, address="杭州市西湖区文三路88号2幢1单元501室", use="residential", now=now,
                          case_number="存量数据导入")
        register.register_ownership(s, UNIT, [OWNER], case_number="存量数据导入", now=now)


def current(engine: Engine, kind: str) -> list[register.RightInfo]:
    with engine.db.read() as s:
        return register.current_rights(s, UNIT, [kind])


def test_seizure_expires_at_its_term_and_the_queued_one_takes_effect(engine: Engine, clock) -> None:
    setup_unit(engine)
    now = engine.clock.now()
    with engine.db.write() as s:
        register.register_seizure(s, UNIT, court="杭州市西湖区人民法院", document_number="(2025)浙0106执1号",
                                  term_start="2025-12-01", term_end="2026-11-30", case_number="2026-000001", now=now)
        register.register_seizure(s, UNIT, court="杭州市中级人民法院", document_number="(2026)浙01执保2号",
                                  term_start="2026-11-01", term_end="2027-10-31", case_number="2026-000002", now=now)
    assert register_upkeep(engine) == {"objections_lapsed": 0, "seizures_expired": 0}
    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=SHANGHAI))  # the last day of the term still counts
    assert register_upkeep(engine)["seizures_expired"] == 0
    clock.set(datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI))
    assert register_upkeep(engine)["seizures_expired"] == 1
    [in_effect] = current(engine, "seizure")
    assert in_effect.document_number == "(2026)浙01执保2号" and not in_effect.queued
    with engine.db.read() as s:
        ended = [r for r in register.history(s, UNIT) if r.document_number == "(2025)浙0106执1号"][0]
    assert ended.status == "ended" and "届满未续封" in ended.end_reason
    assert register_upkeep(engine)["seizures_expired"] == 0  # nothing twice


def test_objection_lapses_without_a_suit_but_not_with_one(engine: Engine, clock) -> None:
    setup_unit(engine)
    now = engine.clock.now()
    with engine.db.write() as s:
        lapsing = register.register_objection(s, UNIT, applicant={"name": "李娜", "id_number": "330105198912013844"},
                                              reason="主张共有份额", case_number="2026-000003", now=now)
        kept = register.register_objection(s, UNIT, applicant={"name": "王芳", "id_number": "330102198503170421"},
                                           reason="主张买卖无效", case_number="2026-000004", now=now)
        register.record_objection_suit(s, kept.id, court="杭州市西湖区人民法院", filed_on="2026-11-30",
                                       case_number="2026-000004", now=now)
    clock.set(datetime.combine(lapsing.lapses_on, datetime.min.time(), SHANGHAI) + timedelta(hours=12))
    assert register_upkeep(engine)["objections_lapsed"] == 0  # the last day to sue is not over yet
    clock.advance(days=1)
    assert register_upkeep(engine)["objections_lapsed"] == 1
    assert [r.id for r in current(engine, "objection")] == [kept.id]
