"""不动产单元号 (GB/T 37346): a registrar sees which part of a wrong number is wrong, and where."""
from __future__ import annotations

import pytest

from domain import unit_number as un

VALID = "320684413219GB00029F00010002"  # 海门: 宗地 320684413219GB00029, 幢0001 户0002


def test_valid_example_and_its_parts() -> None:
    u = un.parse(VALID)
    assert u.value == VALID
    assert (u.county_code, u.cadastral_district, u.cadastral_subdistrict) == ("320684", "413", "219")
    assert (u.parcel_feature, u.parcel_sequence) == ("GB", "00029")
    assert (u.attachment_feature, u.attachment_unit) == ("F", "00010002")
    assert u.parcel_code == "320684413219GB00029" == un.parcel_code(VALID)
    assert u.land_unit == "320684413219GB00029W00000000" == un.land_unit(VALID)
    assert un.display(VALID) == "320684 413219 GB00029 F00010002"
    assert not un.is_virtual(VALID) and not u.is_land_only
    assert un.is_land_only(u.land_unit)
    assert un.is_valid(VALID)


def test_display_format_and_lower_case_are_accepted() -> None:
    assert un.validate("320684 413219 gb00029 f00010002") == VALID


def test_virtual_unit_number() -> None:
    virtual = "330106000000GB00001F00010101"
    assert un.is_virtual(virtual)
    assert un.parse(virtual).display == "330106 000000 GB00001 F00010101"


@pytest.mark.parametrize(("number", "part", "fragment"), [
    ("320684413219GB00029F0001000", "长度", "应为28位，实为27位"),
    ("32068X413219GB00029F00010002", "县级行政区划代码", "第1–6位县级行政区划代码应为6位数字，实为32068X"),
    ("990684413219GB00029F00010002", "县级行政区划代码", "第1–6位县级行政区划代码应为以省级代码"),
    ("3206844A3219GB00029F00010002", "地籍区代码", "第7–9位地籍区代码应为3位数字，实为4A3"),
    ("3206844132-9GB00029F00010002", "地籍子区代码", "第10–12位地籍子区代码应为3位数字，实为2-9"),
    ("320684413219QB00029F00010002", "宗地特征码第一位", "第13位宗地特征码第一位应为G（国家所有）、J（集体所有）或Z"),
    ("320684413219GK00029F00010002", "宗地特征码第二位",
     "第14位宗地特征码第二位应为A、B、S、X、C、D、E、F、H、G、W、Y之一，实为K"),
    ("320684413219GB00000F00010002", "宗地顺序号", "第15–19位宗地顺序号应为00001–99999，实为00000"),
    ("320684413219GB0002AF00010002", "宗地顺序号", "第15–19位宗地顺序号应为00001–99999，实为0002A"),
    ("320684413219GB00029R00010002", "定着物特征码", "第20位定着物特征码应为F（房屋等建筑物、构筑物）"),
    ("320684413219GB00029F0001000A", "定着物单元编号", "第21–28位定着物单元编号应为8位数字，实为0001000A"),
    ("320684413219GB00029W00010002", "定着物单元编号", "第21–28位定着物单元编号应为00000000（定着物特征码为W"),
])
def test_each_malformed_part_is_named_with_its_position(number: str, part: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        un.parse(number)
    assert fragment in str(info.value)
    assert isinstance(info.value, un.UnitNumberError) and info.value.part == part
    assert not un.is_valid(number)


def test_every_parcel_feature_code_from_the_standard() -> None:
    for first in "GJZ":
        for second in "ABSXCDEFHGWY":
            assert un.is_valid(f"320684413219{first}{second}00029F00010002")
    for feature in "FLQ":
        assert un.is_valid(f"320684413219GB00029{feature}00010002")
