"""不动产单元号: the 28-character real-estate unit number of GB/T 37346-2019.

Layout (positions are 1-based, as the standard and the clerks count them):

    1–6    县级行政区划代码 (GB/T 2260)              320684
    7–9    地籍区                                    413
    10–12  地籍子区                                  219
    13–14  宗地/宗海特征码                            GB
    15–19  宗地/宗海顺序号 00001–99999                00029
    20     定着物特征码 F/L/Q/W                       F
    21–28  定着物单元编号                             00010002

The first 19 characters are the parcel code 宗地代码; the parcel's land-only unit is the parcel
code + "W00000000", and encumbrances registered on it bind every unit on the parcel. A unit whose
cadastral district and sub-district (positions 7–12) are all zero is a virtual unit 虚拟单元号,
used in production systems for rights registered before the parcel was surveyed.

`parse` raises `UnitNumberError` (a ValueError) naming the part that is wrong, where it is, what
it should be and what it is, e.g. "第15–19位宗地顺序号应为00001–99999，实为00000".
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTACHMENT_FEATURES",
    "LENGTH",
    "PARCEL_FEATURE_FIRST",
    "PARCEL_FEATURE_SECOND",
    "UnitNumber",
    "UnitNumberError",
    "display",
    "is_land_only",
    "is_valid",
    "is_virtual",
    "land_unit",
    "normalise",
    "parcel_code",
    "parse",
    "validate",
]

LENGTH = 28
LAND_ONLY_SUFFIX = "W00000000"

PARCEL_FEATURE_FIRST = {"G": "国家土地所有权", "J": "集体土地所有权", "Z": "土地所有权未确定或有争议"}
PARCEL_FEATURE_SECOND = {
    "A": "集体土地所有权",
    "B": "建设用地使用权（地表）",
    "S": "建设用地使用权（地上）",
    "X": "建设用地使用权（地下）",
    "C": "宅基地使用权",
    "D": "土地承包经营权（耕地）",
    "E": "土地承包经营权（林地）",
    "F": "土地承包经营权（草地）",
    "H": "海域使用权",
    "G": "无居民海岛使用权",
    "W": "使用权未确定或有争议",
    "Y": "其他土地使用权",
}
ATTACHMENT_FEATURES = {"F": "房屋等建筑物、构筑物", "L": "森林、林木", "Q": "其他", "W": "无定着物"}

# First two digits of a GB/T 2260 county code: the provinces, autonomous regions and municipalities.
_PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
     "71", "81", "82"}
)


class UnitNumberError(ValueError):
    """A malformed unit number: which part, where (1-based positions), expected and actual text."""

    def __init__(self, message: str, *, part: str, start: int, end: int, actual: str) -> None:
        super().__init__(message)
        self.part = part
        self.start = start
        self.end = end
        self.actual = actual


def _positions(start: int, end: int) -> str:
    return f"第{start}位" if start == end else f"第{start}–{end}位"


def _fail(part: str, start: int, end: int, expected: str, actual: str) -> UnitNumberError:
    shown = actual if actual else "（空）"
    return UnitNumberError(f"不动产单元号{_positions(start, end)}{part}应为{expected}，实为{shown}",
                           part=part, start=start, end=end, actual=actual)


def _digits(text: str) -> bool:
    return len(text) > 0 and all("0" <= ch <= "9" for ch in text)


@dataclass(frozen=True)
class UnitNumber:
    """A validated unit number and its parts."""

    value: str

    @property
    def county_code(self) -> str:
        """县级行政区划代码 (positions 1–6)."""
        return self.value[0:6]

    @property
    def cadastral_district(self) -> str:
        """地籍区 (7–9)."""
        return self.value[6:9]

    @property
    def cadastral_subdistrict(self) -> str:
        """地籍子区 (10–12)."""
        return self.value[9:12]

    @property
    def parcel_feature(self) -> str:
        """宗地特征码 (13–14), e.g. GB = 国有建设用地使用权（地表）."""
        return self.value[12:14]

    @property
    def parcel_sequence(self) -> str:
        """宗地顺序号 (15–19)."""
        return self.value[14:19]

    @property
    def attachment_feature(self) -> str:
        """定着物特征码 (20): F 房屋, L 林木, Q 其他, W 无定着物."""
        return self.value[19]

    @property
    def attachment_unit(self) -> str:
        """定着物单元编号 (21–28); for a house by common practice 幢号 (4) + 户号 (4)."""
        return self.value[20:28]

    @property
    def parcel_code(self) -> str:
        """宗地代码: the first 19 characters."""
        return self.value[:19]

    @property
    def land_unit(self) -> str:
        """The parcel's land-only unit: parcel code + W00000000."""
        return self.value[:19] + LAND_ONLY_SUFFIX

    @property
    def is_land_only(self) -> bool:
        return self.value[19:] == LAND_ONLY_SUFFIX

    @property
    def is_virtual(self) -> bool:
        """Positions 7–12 all zero: a virtual unit number 虚拟不动产单元号."""
        return self.value[6:12] == "000000"

    @property
    def display(self) -> str:
        """The 6/6/7/9 grouping registrars print: 320684 413219 GB00029 F00010002."""
        v = self.value
        return f"{v[0:6]} {v[6:12]} {v[12:19]} {v[19:28]}"

    def __str__(self) -> str:
        return self.value


def normalise(value: str) -> str:
    """Strip the spaces of the display grouping and surrounding whitespace; upper-case letters."""
    if not isinstance(value, str):
        raise UnitNumberError(f"不动产单元号应为28位字符串，实为{type(value).__name__}",
                              part="不动产单元号", start=1, end=LENGTH, actual=repr(value))
    return "".join(value.split()).upper()


def parse(value: str) -> UnitNumber:
    """Validate a unit number and return its parts; raise UnitNumberError naming the wrong part.

    Spaces (as in the display format) are removed and letters upper-cased before checking.
    """
    v = normalise(value)
    if len(v) != LENGTH:
        raise UnitNumberError(f"不动产单元号应为{LENGTH}位，实为{len(v)}位（{v or '空'}）",
                              part="长度", start=1, end=LENGTH, actual=v)
    county = v[0:6]
    if not _digits(county):
        raise _fail("县级行政区划代码", 1, 6, "6位数字", county)
    if county[:2] not in _PROVINCES:
        raise _fail("县级行政区划代码", 1, 6, "以省级代码（11–65、71、81、82）开头的6位代码", county)
    if not _digits(v[6:9]):
        raise _fail("地籍区代码", 7, 9, "3位数字", v[6:9])
    if not _digits(v[9:12]):
        raise _fail("地籍子区代码", 10, 12, "3位数字", v[9:12])
    if v[12] not in PARCEL_FEATURE_FIRST:
        raise _fail("宗地特征码第一位", 13, 13, "G（国家所有）、J（集体所有）或Z（所有权未确定）", v[12])
    if v[13] not in PARCEL_FEATURE_SECOND:
        raise _fail("宗地特征码第二位", 14, 14, "A、B、S、X、C、D、E、F、H、G、W、Y之一", v[13])
    seq = v[14:19]
    if not _digits(seq) or seq == "00000":
        raise _fail("宗地顺序号", 15, 19, "00001–99999", seq)
    if v[19] not in ATTACHMENT_FEATURES:
        raise _fail("定着物特征码", 20, 20, "F（房屋等建筑物、构筑物）、L（森林、林木）、Q（其他）或W（无定着物）",
                    v[19])
    unit = v[20:28]
    if not _digits(unit):
        raise _fail("定着物单元编号", 21, 28, "8位数字", unit)
    if v[19] == "W" and unit != "00000000":
        raise _fail("定着物单元编号", 21, 28, "00000000（定着物特征码为W，无定着物）", unit)
    return UnitNumber(v)


def validate(value: str) -> str:
    """The normalised unit number, or UnitNumberError."""
    return parse(value).value


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def parcel_code(value: str) -> str:
    """宗地代码: the first 19 characters of a valid unit number."""
    return parse(value).parcel_code


def land_unit(value: str) -> str:
    """The parcel's land-only unit number (first 19 + W00000000), where parcel-wide encumbrances sit."""
    return parse(value).land_unit


def is_land_only(value: str) -> bool:
    return parse(value).is_land_only


def is_virtual(value: str) -> bool:
    """Positions 7–12 all zero."""
    return parse(value).is_virtual


def display(value: str) -> str:
    """6/6/7/9 grouping: 320684 413219 GB00029 F00010002."""
    return parse(value).display
