"""Working-day calendar: facts checked against chinese_calendar and the State Council 2026 holiday notice.

2026 schedule used below: 元旦 1/1–1/3 off, 1/4 (Sun) worked; 春节 2/15–2/23 off, 2/14 (Sat) and
2/28 (Sat) worked; 中秋 9/25–9/27 off; 国庆 10/1–10/7 off, 9/20 (Sun) and 10/10 (Sat) worked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import calendar as workcal
from domain.calendar import WorkdayCalendar
from domain.clock import SHANGHAI


@pytest.fixture
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


@pytest.fixture
def default_calendar() -> Iterator[WorkdayCalendar]:
    """The module-level calendar, with its override table restored afterwards."""
    saved = dict(workcal.DEFAULT.overrides)
    yield workcal.DEFAULT
    workcal.set_overrides(saved)


# -- National Day 2026 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, date(2026, 10, 8)),  # 10/1–10/7 off
        (2, date(2026, 10, 9)),
        (3, date(2026, 10, 10)),  # Saturday make-up working day
        (5, date(2026, 10, 13)),  # 10/11 Sunday off, 10/12 Mon is the 4th
    ],
)
def test_national_day_2026(cal: WorkdayCalendar, n: int, expected: date) -> None:
    assert cal.add_workdays(date(2026, 9, 30), n) == expected


def test_national_day_make_up_sunday_before(cal: WorkdayCalendar) -> None:
    assert cal.is_workday(date(2026, 9, 20))  # Sunday, worked
    assert not cal.is_workday(date(2026, 9, 19))  # Saturday, ordinary weekend
    assert cal.add_workdays(date(2026, 9, 18), 1) == date(2026, 9, 20)


def test_national_day_holiday_days(cal: WorkdayCalendar) -> None:
    for offset in range(7):
        assert not cal.is_workday(date(2026, 10, 1) + timedelta(days=offset))
    assert cal.workdays_between(date(2026, 9, 30), date(2026, 10, 7)) == 0
    assert cal.workdays_between(date(2026, 9, 30), date(2026, 10, 13)) == 5


def test_mid_autumn_2026(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(date(2026, 9, 24), 1) == date(2026, 9, 28)


# -- ordinary weekend ----------------------------------------------------------------------------


def test_weekend(cal: WorkdayCalendar) -> None:
    assert not cal.is_workday(date(2026, 10, 17))
    assert not cal.is_workday(date(2026, 10, 18))
    assert cal.add_workdays(date(2026, 10, 16), 1) == date(2026, 10, 19)  # Fri → Mon
    assert cal.add_workdays(date(2026, 10, 17), 1) == date(2026, 10, 19)  # accepted on a Saturday
    assert cal.workdays_between(date(2026, 10, 16), date(2026, 10, 19)) == 1


# -- Spring Festival 2026 ------------------------------------------------------------------------


def test_spring_festival_2026(cal: WorkdayCalendar) -> None:
    for offset in range(9):  # 2/15 … 2/23
        assert not cal.is_workday(date(2026, 2, 15) + timedelta(days=offset))
    assert cal.add_workdays(date(2026, 2, 13), 1) == date(2026, 2, 14)  # make-up Saturday
    assert cal.add_workdays(date(2026, 2, 13), 2) == date(2026, 2, 24)
    assert cal.add_workdays(date(2026, 2, 14), 1) == date(2026, 2, 24)


def test_make_up_saturdays_count(cal: WorkdayCalendar) -> None:
    assert cal.is_workday(date(2026, 2, 28))
    assert cal.add_workdays(date(2026, 2, 27), 1) == date(2026, 2, 28)
    assert cal.add_workdays(date(2026, 2, 27), 2) == date(2026, 3, 2)
    assert cal.add_workdays(date(2025, 12, 31), 1) == date(2026, 1, 4)  # 元旦 make-up Sunday


# -- override table ------------------------------------------------------------------------------


def test_override_makes_holiday(cal: WorkdayCalendar) -> None:
    cal.set_overrides({date(2026, 10, 9): False})  # e.g. a local closure
    assert not cal.is_workday(date(2026, 10, 9))
    assert cal.add_workdays(date(2026, 9, 30), 2) == date(2026, 10, 10)


def test_override_makes_saturday_workday() -> None:
    cal = WorkdayCalendar({date(2026, 10, 17): True})
    assert cal.is_workday(date(2026, 10, 17))
    assert cal.add_workdays(date(2026, 10, 16), 1) == date(2026, 10, 17)


def test_set_overrides_replaces_table_and_cache_follows(cal: WorkdayCalendar) -> None:
    assert cal.is_workday(date(2026, 10, 9))  # now cached from chinese_calendar
    cal.set_overrides({"2026-10-09": False})  # ISO keys accepted (admin JSON)
    assert not cal.is_workday(date(2026, 10, 9))
    cal.set_overrides({})
    assert cal.is_workday(date(2026, 10, 9))
    assert dict(cal.overrides) == {}


# -- years chinese_calendar does not cover ---------------------------------------------------------


def test_uncovered_year_falls_back_to_weekdays(
    cal: WorkdayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    assert cal.covered(2026)
    assert not cal.covered(2027)
    with caplog.at_level(logging.WARNING, logger="domain.calendar"):
        assert cal.is_workday(date(2027, 1, 1))  # Friday; really 元旦, but no data → Mon–Fri
        assert not cal.is_workday(date(2027, 1, 2))  # Saturday
        assert cal.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 1)
    assert 2027 in cal.uncovered_years
    assert 2026 not in cal.uncovered_years
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1  # once per year, not per date
    assert "override" in warnings[0].getMessage()


def test_override_takes_precedence_in_uncovered_year(cal: WorkdayCalendar) -> None:
    cal.set_overrides({date(2027, 1, 1): False})
    assert cal.covered(2027)
    assert not cal.is_workday(date(2027, 1, 1))
    assert cal.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)


# -- input kinds ---------------------------------------------------------------------------------


def test_date_in_date_out(cal: WorkdayCalendar) -> None:
    result = cal.add_workdays(date(2026, 9, 30), 1)
    assert type(result) is date
    assert result == date(2026, 10, 8)


def test_naive_datetime_is_shanghai_and_keeps_time(cal: WorkdayCalendar) -> None:
    result = cal.add_workdays(datetime(2026, 9, 30, 10, 0), 1)
    assert result == datetime(2026, 10, 8, 10, 0, tzinfo=SHANGHAI)
    assert result.tzinfo is SHANGHAI


def test_aware_datetime_uses_shanghai_date(cal: WorkdayCalendar) -> None:
    # 2026-10-09 17:00 UTC is Saturday 2026-10-10 01:00 in Shanghai (a make-up working day).
    result = cal.add_workdays(datetime(2026, 10, 9, 17, 0, tzinfo=UTC), 1)
    assert result == datetime(2026, 10, 12, 1, 0, tzinfo=SHANGHAI)
    assert result.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2026-09-30", 1, "2026-10-08"),
        ("2026-09-30", 5, "2026-10-13"),
        ("2026-09-30T10:00:00+08:00", 5, "2026-10-13T10:00:00+08:00"),
        ("2026-09-30T10:00:00", 2, "2026-10-09T10:00:00+08:00"),
        ("2026-10-09T17:00:00Z", 1, "2026-10-12T01:00:00+08:00"),
        ("2026-09-30T02:00:00Z", 0, "2026-09-30T10:00:00+08:00"),
        ("2026-10-01", 0, "2026-10-01"),
    ],
)
def test_string_in_string_out(cal: WorkdayCalendar, start: str, n: int, expected: str) -> None:
    assert cal.add_workdays(start, n) == expected


def test_zero_returns_start_normalised(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(date(2026, 10, 3), 0) == date(2026, 10, 3)
    moment = datetime(2026, 10, 3, 1, 0, tzinfo=UTC)
    assert cal.add_workdays(moment, 0) == datetime(2026, 10, 3, 9, 0, tzinfo=SHANGHAI)
    assert cal.add_workdays(moment, 0).tzinfo is SHANGHAI


def test_mixed_kinds_in_workdays_between(cal: WorkdayCalendar) -> None:
    assert cal.workdays_between("2026-09-30", datetime(2026, 10, 13, 18, 0)) == 5
    assert cal.workdays_between(date(2026, 10, 13), "2026-09-30T09:00:00+08:00") == -5
    assert cal.workdays_between("2026-10-09", "2026-10-09") == 0


# -- negative n ----------------------------------------------------------------------------------


def test_negative_n(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert cal.add_workdays(date(2026, 10, 12), -1) == date(2026, 10, 10)
    assert cal.add_workdays(date(2026, 10, 12), -2) == date(2026, 10, 9)
    assert cal.add_workdays(date(2026, 2, 24), -1) == date(2026, 2, 14)
    assert cal.add_workdays("2026-10-13", -5) == "2026-09-30"


# -- invariant -----------------------------------------------------------------------------------


def test_between_inverts_add_over_2026(cal: WorkdayCalendar) -> None:
    start = date(2025, 12, 1)
    for offset in range(400):  # every day of 2026, running into the 2027 fallback
        a = start + timedelta(days=offset)
        for n in (0, 1, 2, 5, 10, 20, 30):
            b = cal.add_workdays(a, n)
            assert cal.workdays_between(a, b) == n, (a, n, b)
            assert n == 0 or cal.is_workday(b)


@settings(max_examples=200, deadline=None)
@given(
    a=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    n=st.integers(min_value=-40, max_value=40),
    overrides=st.dictionaries(
        st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 3, 31)), st.booleans(), max_size=20
    ),
)
def test_invariant_with_random_overrides(a: date, n: int, overrides: dict[date, bool]) -> None:
    cal = WorkdayCalendar(overrides)
    b = cal.add_workdays(a, n)
    if n >= 0:
        assert cal.workdays_between(a, b) == n
    else:
        # b is the |n|-th working day before a: working days in [b, a) number exactly |n|.
        assert b < a and cal.is_workday(b)
        assert cal.workdays_between(b, a - timedelta(days=1)) == -n - 1
    assert n == 0 or cal.is_workday(b)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["2026-13-45", "next tuesday", "", "2026-09-30T25:00"])
def test_unparseable_string(cal: WorkdayCalendar, bad: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601") as info:
        cal.add_workdays(bad, 1)
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError):
        cal.workdays_between("2026-09-30", bad)


@pytest.mark.parametrize("bad_n", [1.5, "3", None, True])
def test_non_int_n(cal: WorkdayCalendar, bad_n: object) -> None:
    with pytest.raises(ValueError, match="must be an int") as info:
        cal.add_workdays(date(2026, 9, 30), bad_n)  # type: ignore[arg-type]
    assert repr(bad_n) in str(info.value)


def test_unsupported_start_type(cal: WorkdayCalendar) -> None:
    with pytest.raises(ValueError, match="20260930"):
        cal.add_workdays(20260930, 1)  # type: ignore[call-overload]


# -- module-level functions (what BPMN expressions call) -----------------------------------------


def test_module_functions_delegate_to_default(default_calendar: WorkdayCalendar) -> None:
    assert workcal.add_workdays("2026-09-30", 5) == "2026-10-13"
    assert workcal.workdays_between(date(2026, 9, 30), date(2026, 10, 13)) == 5
    assert not workcal.is_workday("2026-10-01")
    assert workcal.is_workday(datetime(2026, 10, 9, 17, 0, tzinfo=UTC))  # Sat 10/10 in Shanghai
    workcal.set_overrides({date(2026, 10, 8): False})
    assert default_calendar.overrides == {date(2026, 10, 8): False}
    assert workcal.add_workdays("2026-09-30", 1) == "2026-10-09"


@settings(max_examples=200, deadline=None)
@given(a=st.dates(date(2023, 6, 1), date(2028, 6, 30)), b=st.dates(date(2023, 6, 1), date(2028, 6, 30)),
       extra=st.dictionaries(st.dates(date(2024, 1, 1), date(2027, 12, 31)), st.booleans(), max_size=6))
def test_counting_working_days_agrees_with_walking_day_by_day(a: date, b: date, extra: dict[date, bool]) -> None:
    cal = WorkdayCalendar(extra)
    lo, hi = min(a, b), max(a, b)
    walked = sum(cal.is_workday(lo + timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
    assert cal.workdays_between(a, b) == (walked if a <= b else -walked)
    cal.set_overrides({})  # a replaced override table is taken into account at once
    walked = sum(cal.is_workday(lo + timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
    assert cal.workdays_between(lo, hi) == walked
