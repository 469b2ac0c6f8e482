"""The Chinese working-day calendar behind deadlines (限时办结) and BPMN timer expressions.

Statutory time limits are counted in working days, and the State Council moves working days
around every year (调休: a Saturday becomes a working day so a holiday can be longer). The
`chinese_calendar` package knows the published schedules; an office's override table wins over it,
because a local closure, or next year's schedule published after our release, must take effect
without a deployment. For a year the package does not cover, the calendar falls back to
Monday–Friday and warns, so a deadline is never refused, only possibly a few days off until an
admin enters that year's holidays.

Counting follows 民法典 第二百零一条: the day a case is accepted is not counted, so "5 working
days from 2026-09-30" is the 5th working day after that date.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import overload

import chinese_calendar

from domain.clock import SHANGHAI

__all__ = [
    "DEFAULT",
    "DateLike",
    "WorkdayCalendar",
    "add_workdays",
    "is_workday",
    "set_overrides",
    "workdays_between",
]

logger = logging.getLogger(__name__)

DateLike = date | datetime | str
"""What the calendar accepts: a date, a datetime (naive = Asia/Shanghai) or an ISO-8601 string of either."""

_ONE_DAY = timedelta(days=1)


def _to_shanghai(moment: datetime) -> datetime:
    """Naive datetimes are office-local time; aware ones are converted so the local date is right."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI)


def _parse(value: object) -> date | datetime:
    """Normalise an accepted input to a date, or to an aware Asia/Shanghai datetime.

    Every bad input raises ValueError (not TypeError) so callers such as BPMN expressions and
    admin forms have a single exception to report back to the person who wrote the value.
    """
    if isinstance(value, datetime):  # before `date`: datetime is a subclass of date
        return _to_shanghai(value)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return _to_shanghai(datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(f"not an ISO-8601 date or datetime: {value!r}") from None
    raise ValueError(f"expected a date, datetime or ISO-8601 string, got {type(value).__name__}: {value!r}")


def _local_date(value: object) -> date:
    moment = _parse(value)
    return moment.date() if isinstance(moment, datetime) else moment


def _check_count(n: object) -> int:
    # bool is an int subclass, but `add_workdays(d, True)` is a bug, not "one day".
    # ValueError, not TypeError: one exception type for every bad input (see `_parse`).
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(  # noqa: TRY004
            f"number of working days must be an int, got {type(n).__name__}: {n!r}"
        )
    return n


def _override_key(key: object) -> date:
    """Override keys are calendar days; datetimes and ISO strings (e.g. from JSON) are reduced to one."""
    return _local_date(key)


class WorkdayCalendar:
    """Answers "is this a working day?" and counts working days, with an admin override table.

    Lookup order: override table, then `chinese_calendar`, then Monday–Friday for uncovered years.
    Results from the last two are cached per date (they never change at run time); the override
    table is consulted first on every call, so replacing it needs no cache invalidation.
    """

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self._overrides: Mapping[date, bool] = MappingProxyType({})
        self._base_cache: dict[date, bool] = {}
        self._year_supported: dict[int, bool] = {}
        self._prefixes: dict[int, list[int]] = {}
        self._prefix_table: Mapping[date, bool] | None = None
        self.uncovered_years: set[int] = set()
        """Years asked about that `chinese_calendar` has no data for (Monday–Friday was assumed)."""
        if overrides:
            self.set_overrides(overrides)

    # -- override table ------------------------------------------------------------------------

    @property
    def overrides(self) -> Mapping[date, bool]:
        """The current override table, read-only (True = working day, False = holiday)."""
        return self._overrides

    def set_overrides(self, mapping: Mapping[date, bool] | Mapping[DateLike, bool]) -> None:
        """Replace the whole override table.

        A new dict is built and then swapped in with one assignment, so concurrent readers see
        either the old table or the new one, never a half-updated table.
        """
        table = {_override_key(day): bool(flag) for day, flag in mapping.items()}
        self._overrides = MappingProxyType(table)

    # -- queries -------------------------------------------------------------------------------

    def _supported(self, year: int) -> bool:
        """Whether `chinese_calendar` has data for the year (memoised: it raises otherwise)."""
        known = self._year_supported.get(year)
        if known is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
                known = True
            except NotImplementedError:
                known = False
            self._year_supported[year] = known
        return known

    def covered(self, year: int) -> bool:
        """True if the year's holidays are known: from `chinese_calendar` or from the override table."""
        return self._supported(year) or any(day.year == year for day in self._overrides)

    def _base_is_workday(self, day: date) -> bool:
        cached = self._base_cache.get(day)
        if cached is not None:
            return cached
        if self._supported(day.year):
            result = bool(chinese_calendar.is_workday(day))
        else:
            result = day.weekday() < 5
            if day.year not in self.uncovered_years:
                self.uncovered_years.add(day.year)
                logger.warning(
                    "chinese_calendar has no holiday data for %d; assuming Monday-Friday working days. "
                    "An admin should enter %d's holidays and make-up working days in the override table.",
                    day.year,
                    day.year,
                )
        self._base_cache[day] = result
        return result

    def is_workday(self, d: DateLike) -> bool:
        """Whether the (Asia/Shanghai) day is a working day of the registration office."""
        day = _local_date(d)
        override = self._overrides.get(day)
        if override is not None:
            return override
        return self._base_is_workday(day)

    def _shift(self, day: date, n: int) -> date:
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_workday(day):
                remaining -= 1
        return day

    @overload
    def add_workdays(self, start: datetime, n: int) -> datetime: ...
    @overload
    def add_workdays(self, start: date, n: int) -> date: ...
    @overload
    def add_workdays(self, start: str, n: int) -> str: ...

    def add_workdays(self, start: DateLike, n: int) -> DateLike:
        """The n-th working day after `start` (before it if n < 0); the start day itself is not counted.

        Returns the kind it was given: a date; an aware Asia/Shanghai datetime keeping the local
        time of day; or an ISO string ("YYYY-MM-DD", or a full datetime with +08:00). n == 0
        returns `start` normalised the same way.
        """
        count = _check_count(n)
        moment = _parse(start)
        if isinstance(moment, datetime):
            target = self._shift(moment.date(), count)
            result: date = datetime.combine(target, moment.timetz())
        else:
            result = self._shift(moment, count)
        return result.isoformat() if isinstance(start, str) else result

    def workdays_between(self, a: DateLike, b: DateLike) -> int:
        """Working days d with a < d <= b (Asia/Shanghai dates); the negative count if b < a.

        For n >= 0, `workdays_between(a, add_workdays(a, n)) == n`.
        """
        first, last = _local_date(a), _local_date(b)
        sign = 1
        if last < first:
            first, last, sign = last, first, -1
        if first.year == last.year:
            return sign * (self._through(last) - self._through(first))
        count = self._prefix(first.year)[-1] - self._through(first)
        for year in range(first.year + 1, last.year):
            count += self._prefix(year)[-1]
        return sign * (count + self._through(last))

    def _through(self, day: date) -> int:
        """Working days from 1 January of the day's year up to and including the day."""
        return self._prefix(day.year)[day.timetuple().tm_yday - 1]

    def _prefix(self, year: int) -> list[int]:
        """Running count of working days over the year, day by day — so counting between two dates
        (deadline lights for every open task, some years old) costs a lookup, not a walk."""
        if self._prefix_table is not self._overrides:  # the override table was replaced
            self._prefixes = {}
            self._prefix_table = self._overrides
        found = self._prefixes.get(year)
        if found is None:
            running, found = 0, []
            day = date(year, 1, 1)
            while day.year == year:
                running += self.is_workday(day)
                found.append(running)
                day += _ONE_DAY
            self._prefixes[year] = found
        return found


DEFAULT = WorkdayCalendar()
"""The process-wide calendar; the admin's override table is loaded into it with `set_overrides`."""


def is_workday(d: DateLike) -> bool:
    """`DEFAULT.is_workday`, for BPMN expressions."""
    return DEFAULT.is_workday(d)


@overload
def add_workdays(start: datetime, n: int) -> datetime: ...
@overload
def add_workdays(start: date, n: int) -> date: ...
@overload
def add_workdays(start: str, n: int) -> str: ...


def add_workdays(start: DateLike, n: int) -> DateLike:
    """`DEFAULT.add_workdays`, for BPMN expressions and deadline computation."""
    return DEFAULT.add_workdays(start, n)


def workdays_between(a: DateLike, b: DateLike) -> int:
    """`DEFAULT.workdays_between`, for BPMN expressions and deadline lights."""
    return DEFAULT.workdays_between(a, b)


def set_overrides(mapping: Mapping[date, bool] | Mapping[DateLike, bool]) -> None:
    """`DEFAULT.set_overrides`: replace the process-wide override table."""
    DEFAULT.set_overrides(mapping)
