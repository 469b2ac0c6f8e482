"""Tax and fees on a second-hand transfer, to the fen, and the sandbox tax authority's books.

Every expected amount below is worked out by hand in the comments, from the rules in
notes/domain-facts.md C.2/C.3 as adapters/tax/rates.json states them:
- VAT (seller): 5 % levy rate; base = amount ÷ 1.05 rounded to the fen, tax = base × 5 %.
  Exempt when held ≥ 2 years (in 北上广深 before 2024-12-01 only ordinary housing; non-ordinary pays on
  the gain). An exempt line shows the tax as due and all of it as relief.
- Surcharges (seller) on the VAT: 城建税 7 %, 教育费附加 3 %, 地方教育附加 2 %; exempt with the VAT.
- Deed tax (buyer): due at 3 %, the reduced rate's saving as relief. Its base is the price without the
  VAT the seller pays (财税〔2016〕43号); with VAT exempt, the full price.
- PIT (seller): 20 % × (price − VAT − original − surcharges), never below 0; original unknown:
  1 % (ordinary) / 2 % (non-ordinary) / 1 % (non-residential) of the price without VAT;
  满五唯一: all relief.
- Registration fee (buyer): 80 residential / 550 non-residential; 10 per extra certificate.
Rounding: ROUND_HALF_UP to the fen on each line.
"""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.common import Party
from adapters.tax import TaxAuthority, TransferForTax
from adapters.tax.assess import DEFAULT_RATES_PATH, assess, full_years, load_rates, totals
from adapters.tax.sandbox import TAX_TABLES, SandboxTax
from domain.clock import SHANGHAI, FrozenClock
from domain.errors import BusinessError

D = Decimal
RATES = load_rates()

HANGZHOU = "330106001001GB00001F00010001"  # 杭州市西湖区: not tier-1
SHANGHAI_UNIT = "310104002003GB00012F00020301"  # 上海市徐汇区
BEIJING = "110105004005GB00033F00050502"  # 北京市朝阳区
GUANGZHOU = "440106006007GB00044F00060601"  # 广州市天河区
SHENZHEN = "440305008009GB00055F00070701"  # 深圳市南山区

SELLER = Party(name="李四", id_number="330106198001011234")
BUYER = Party(name="王五", id_number="330106199002022345")


def request(**kw) -> TransferForTax:
    values = dict(case_number="ZY2026000001", unit_number=HANGZHOU, buyer=BUYER, seller=SELLER,
                  buyer_homes_before=0)
    values.update(kw)
    return TransferForTax(**values)


def exempt(item: str, base: str, due: str) -> tuple:
    return (item, base, due, due, "0.00")


def paid(item: str, base: str, due: str) -> tuple:
    return (item, base, due, "0.00", due)


def vat_surcharges(vat: str, s7: str, s3: str, s2: str, *, relieved: bool) -> list[tuple]:
    kind = exempt if relieved else paid
    return [kind("城市维护建设税", vat, s7), kind("教育费附加", vat, s3), kind("地方教育附加", vat, s2)]


FEE = paid("不动产登记费", "1.00", "80.00")
FEE_NON_RESIDENTIAL = paid("不动产登记费", "1.00", "550.00")

# id, request fields, expected lines (item, base, due, relief, payable), total payable, a piece of the deed-tax basis
CASES = [
    pytest.param(
        # 2016 regime, buyer's only home of exactly 90 m² (≤90 → 1 %); Hangzhou; held 8 years and the
        # seller's only home (满五唯一); original 600 000.
        # VAT exempt (≥2 y): 1 000 000 ÷ 1.05 = 952 380.952… → 952 380.95; × 5 % = 47 619.0475 → 47 619.05
        # surcharges on 47 619.05: 7 % 3 333.3335 → 3 333.33; 3 % 1 428.5715 → 1 428.57; 2 % 952.381 → 952.38
        # deed: base 1 000 000 (no VAT paid); due 3 % 30 000; payable 1 % 10 000; relief 20 000
        # PIT: 1 000 000 − 600 000 = 400 000 × 20 % = 80 000, 满五唯一 → all relief
        # payable: 10 000 + 80 = 10 080.00
        dict(price=D("1000000"), area=D("90"), contract_date=date(2023, 6, 1), seller_acquired_on=date(2015, 3, 1),
             seller_original_price=D("600000"), seller_only_home=True),
        [("契税", "1000000.00", "30000.00", "20000.00", "10000.00"),
         exempt("增值税", "952380.95", "47619.05"),
         *vat_surcharges("47619.05", "3333.33", "1428.57", "952.38", relieved=True),
         exempt("个人所得税", "400000.00", "80000.00"), FEE],
        "10080.00", "财税〔2016〕23号 家庭唯一住房 面积≤90㎡ 1%",
        id="2016-only-home-90m2-exactly-held8-manwu-weiyi",
    ),
    pytest.param(
        # 2016 regime, only home of 90.01 m² (>90 → 1.5 %); held exactly 3 years; original unknown; not the
        # seller's only home.
        # VAT exempt: 2 000 000 ÷ 1.05 = 1 904 761.904… → 1 904 761.90; × 5 % = 95 238.095 → 95 238.10
        # surcharges on 95 238.10: 6 666.667 → 6 666.67; 2 857.143 → 2 857.14; 1 904.762 → 1 904.76
        # deed: due 60 000; payable 1.5 % 30 000; relief 30 000
        # PIT: original unknown, ordinary: 1 % × 2 000 000 (no VAT paid) = 20 000
        # payable: 30 000 + 20 000 + 80 = 50 080.00
        dict(price=D("2000000"), area=D("90.01"), contract_date=date(2020, 9, 15),
             seller_acquired_on=date(2017, 9, 15)),
        [("契税", "2000000.00", "60000.00", "30000.00", "30000.00"),
         exempt("增值税", "1904761.90", "95238.10"),
         *vat_surcharges("95238.10", "6666.67", "2857.14", "1904.76", relieved=True),
         paid("个人所得税", "2000000.00", "20000.00"), FEE],
        "50080.00", "家庭唯一住房 面积>90㎡ 1.5%",
        id="2016-only-home-over-90-held3-original-unknown",
    ),
    pytest.param(
        # 2016 regime, second home 85.5 m² (≤90 → 1 %) in Hangzhou; held 1 year (<2: VAT on the full price);
        # original 1 200 000.
        # VAT: 1 500 000 ÷ 1.05 = 1 428 571.428… → 1 428 571.43; × 5 % = 71 428.5715 → 71 428.57
        # surcharges on 71 428.57: 4 999.9999 → 5 000.00; 2 142.8571 → 2 142.86; 1 428.5714 → 1 428.57
        #   (sum 8 571.43)
        # deed: base 1 500 000 − 71 428.57 = 1 428 571.43; due 3 % 42 857.1429 → 42 857.14;
        #   payable 1 % 14 285.7143 → 14 285.71; relief 28 571.43
        # PIT: 1 428 571.43 − 1 200 000 − 8 571.43 = 220 000.00 × 20 % = 44 000.00
        # payable: 14 285.71 + 71 428.57 + 8 571.43 + 44 000 + 80 = 138 365.71
        dict(price=D("1500000"), area=D("85.5"), contract_date=date(2021, 5, 10),
             seller_acquired_on=date(2020, 1, 20), seller_original_price=D("1200000"), buyer_homes_before=1),
        [("契税", "1428571.43", "42857.14", "28571.43", "14285.71"),
         paid("增值税", "1428571.43", "71428.57"),
         *vat_surcharges("71428.57", "5000.00", "2142.86", "1428.57", relieved=False),
         paid("个人所得税", "220000.00", "44000.00"), FEE],
        "138365.71", "财税〔2016〕23号 家庭第二套改善性住房 面积≤90㎡ 1%",
        id="2016-second-home-under-90-held1-full-vat",
    ),
    pytest.param(
        # 2016 regime, second home 120 m² (>90 → 2 %); held 4 years, the seller's only home but not 5 years
        # (PIT due); original 2 000 000; two extra certificates.
        # VAT exempt: 3 000 000 ÷ 1.05 = 2 857 142.857… → 2 857 142.86; × 5 % = 142 857.143 → 142 857.14
        # surcharges on 142 857.14: 9 999.9998 → 10 000.00; 4 285.7142 → 4 285.71; 2 857.1428 → 2 857.14
        # deed: due 90 000; payable 2 % 60 000; relief 30 000
        # PIT: (3 000 000 − 2 000 000) × 20 % = 200 000
        # fees: 80 + 2 × 10 = 20
        # payable: 60 000 + 200 000 + 80 + 20 = 260 100.00
        dict(price=D("3000000"), area=D("120"), contract_date=date(2022, 12, 31),
             seller_acquired_on=date(2018, 6, 30), seller_original_price=D("2000000"), seller_only_home=True,
             buyer_homes_before=1, extra_certificates=2),
        [("契税", "3000000.00", "90000.00", "30000.00", "60000.00"),
         exempt("增值税", "2857142.86", "142857.14"),
         *vat_surcharges("142857.14", "10000.00", "4285.71", "2857.14", relieved=True),
         paid("个人所得税", "1000000.00", "200000.00"), FEE, paid("证书工本费", "2.00", "20.00")],
        "260100.00", "家庭第二套改善性住房 面积>90㎡ 2%",
        id="2016-second-home-over-90-held4-extra-certificates",
    ),
    pytest.param(
        # 2016 regime, tier-1 second home (上海, 80 m²): no second-home relief → 3 %; ordinary housing held
        # 4 years (acquired 2019-02-28, contract 2023-03-01) → VAT exempt; original 3 000 000.
        # VAT exempt: 5 000 000 ÷ 1.05 = 4 761 904.761… → 4 761 904.76; × 5 % = 238 095.238 → 238 095.24
        # surcharges on 238 095.24: 16 666.6668 → 16 666.67; 7 142.8572 → 7 142.86; 4 761.9048 → 4 761.90
        # deed: 3 % × 5 000 000 = 150 000, no relief
        # PIT: 2 000 000 × 20 % = 400 000
        # payable: 150 000 + 400 000 + 80 = 550 080.00
        dict(unit_number=SHANGHAI_UNIT, price=D("5000000"), area=D("80"), contract_date=date(2023, 3, 1),
             seller_acquired_on=date(2019, 2, 28), seller_original_price=D("3000000"), buyer_homes_before=1),
        [("契税", "5000000.00", "150000.00", "0.00", "150000.00"),
         exempt("增值税", "4761904.76", "238095.24"),
         *vat_surcharges("238095.24", "16666.67", "7142.86", "4761.90", relieved=True),
         paid("个人所得税", "2000000.00", "400000.00"), FEE],
        "550080.00", "财税〔2016〕23号 家庭第二套住房 上海市不适用减征 3%",
        id="2016-tier1-shanghai-second-home-general-rate",
    ),
    pytest.param(
        # 2016 regime on its last day (2024-11-30), 北京 non-ordinary housing held 3 years: VAT on the gain;
        # buyer's only home 88 m² → 1 % (tier-1 keeps the only-home relief); original 6 000 000.
        # VAT: (8 000 000 − 6 000 000) ÷ 1.05 = 1 904 761.904… → 1 904 761.90; × 5 % = 95 238.095 → 95 238.10
        # surcharges on 95 238.10: 6 666.67; 2 857.14; 1 904.76 (sum 11 428.57)
        # deed: base 8 000 000 − 95 238.10 = 7 904 761.90; due 3 % 237 142.857 → 237 142.86;
        #   payable 1 % 79 047.619 → 79 047.62; relief 158 095.24
        # PIT: 7 904 761.90 − 6 000 000 − 11 428.57 = 1 893 333.33 × 20 % = 378 666.666 → 378 666.67
        # payable: 79 047.62 + 95 238.10 + 11 428.57 + 378 666.67 + 80 = 564 460.96
        dict(unit_number=BEIJING, price=D("8000000"), area=D("88"), ordinary_housing=False,
             contract_date=date(2024, 11, 30), seller_acquired_on=date(2021, 6, 1),
             seller_original_price=D("6000000")),
        [("契税", "7904761.90", "237142.86", "158095.24", "79047.62"),
         paid("增值税", "1904761.90", "95238.10"),
         *vat_surcharges("95238.10", "6666.67", "2857.14", "1904.76", relieved=False),
         paid("个人所得税", "1893333.33", "378666.67"), FEE],
        "564460.96", "财税〔2016〕23号 家庭唯一住房 面积≤90㎡ 1%",
        id="2016-last-day-beijing-non-ordinary-vat-on-gain",
    ),
    pytest.param(
        # The same sale one day later (2024-12-01, 2024年第16号): held ≥2 years is exempt in 北京 too.
        # VAT exempt: 8 000 000 ÷ 1.05 = 7 619 047.619… → 7 619 047.62; × 5 % = 380 952.381 → 380 952.38
        # surcharges on 380 952.38: 26 666.6666 → 26 666.67; 11 428.5714 → 11 428.57; 7 619.0476 → 7 619.05
        # deed: base 8 000 000; due 240 000; payable 1 % 80 000; relief 160 000
        # PIT: 2 000 000 × 20 % = 400 000
        # payable: 80 000 + 400 000 + 80 = 480 080.00
        dict(unit_number=BEIJING, price=D("8000000"), area=D("88"), ordinary_housing=False,
             contract_date=date(2024, 12, 1), seller_acquired_on=date(2021, 6, 1),
             seller_original_price=D("6000000")),
        [("契税", "8000000.00", "240000.00", "160000.00", "80000.00"),
         exempt("增值税", "7619047.62", "380952.38"),
         *vat_surcharges("380952.38", "26666.67", "11428.57", "7619.05", relieved=True),
         paid("个人所得税", "2000000.00", "400000.00"), FEE],
        "480080.00", "公告2024年第16号 家庭唯一住房 面积≤140㎡ 1%",
        id="2024-first-day-beijing-non-ordinary-vat-exempt",
    ),
    pytest.param(
        # 2016 regime's last day, only home 120 m² (>90 → 1.5 %); held 6 years, 满五唯一; original 1 000 000.
        # VAT exempt: 2 400 000 ÷ 1.05 = 2 285 714.2857… → 2 285 714.29; × 5 % = 114 285.7145 → 114 285.71
        # surcharges on 114 285.71: 7 999.9997 → 8 000.00; 3 428.5713 → 3 428.57; 2 285.7142 → 2 285.71
        # deed: due 72 000; payable 1.5 % 36 000; relief 36 000
        # PIT: 1 400 000 × 20 % = 280 000, all relief
        # payable: 36 000 + 80 = 36 080.00
        dict(price=D("2400000"), area=D("120"), contract_date=date(2024, 11, 30),
             seller_acquired_on=date(2018, 1, 10), seller_original_price=D("1000000"), seller_only_home=True),
        [("契税", "2400000.00", "72000.00", "36000.00", "36000.00"),
         exempt("增值税", "2285714.29", "114285.71"),
         *vat_surcharges("114285.71", "8000.00", "3428.57", "2285.71", relieved=True),
         exempt("个人所得税", "1400000.00", "280000.00"), FEE],
        "36080.00", "财税〔2016〕23号 家庭唯一住房 面积>90㎡ 1.5%",
        id="regime-switch-2024-11-30-120m2-1.5pct",
    ),
    pytest.param(
        # The same sale on 2024-12-01: threshold 140 m² → 1 %.
        # deed: due 72 000; payable 1 % 24 000; relief 48 000; the rest as the row above
        # payable: 24 000 + 80 = 24 080.00
        dict(price=D("2400000"), area=D("120"), contract_date=date(2024, 12, 1),
             seller_acquired_on=date(2018, 1, 10), seller_original_price=D("1000000"), seller_only_home=True),
        [("契税", "2400000.00", "72000.00", "48000.00", "24000.00"),
         exempt("增值税", "2285714.29", "114285.71"),
         *vat_surcharges("114285.71", "8000.00", "3428.57", "2285.71", relieved=True),
         exempt("个人所得税", "1400000.00", "280000.00"), FEE],
        "24080.00", "家庭唯一住房 面积≤140㎡ 1%",
        id="regime-switch-2024-12-01-120m2-1pct",
    ),
    pytest.param(
        # 2024 regime, only home of exactly 140 m² (≤140 → 1 %); held 1 year (full VAT); original unknown.
        # VAT: 1 800 000 ÷ 1.05 = 1 714 285.714… → 1 714 285.71; × 5 % = 85 714.2855 → 85 714.29
        # surcharges on 85 714.29: 6 000.0003 → 6 000.00; 2 571.4287 → 2 571.43; 1 714.2858 → 1 714.29
        # deed: base 1 800 000 − 85 714.29 = 1 714 285.71; due 3 % 51 428.5713 → 51 428.57;
        #   payable 1 % 17 142.8571 → 17 142.86; relief 34 285.71
        # PIT: original unknown, ordinary: 1 % × 1 714 285.71 = 17 142.8571 → 17 142.86
        # payable: 17 142.86 + 85 714.29 + 10 285.72 + 17 142.86 + 80 = 130 365.73
        dict(price=D("1800000"), area=D("140"), contract_date=date(2025, 3, 20),
             seller_acquired_on=date(2023, 8, 1)),
        [("契税", "1714285.71", "51428.57", "34285.71", "17142.86"),
         paid("增值税", "1714285.71", "85714.29"),
         *vat_surcharges("85714.29", "6000.00", "2571.43", "1714.29", relieved=False),
         paid("个人所得税", "1714285.71", "17142.86"), FEE],
        "130365.73", "公告2024年第16号 家庭唯一住房 面积≤140㎡ 1%",
        id="2024-only-home-140m2-exactly-held1-original-unknown",
    ),
    pytest.param(
        # 2024 regime, tier-1 second home (深圳, 140.01 m² → 2 %: the relief now applies there too);
        # non-ordinary held 10 years → VAT exempt; not the seller's only home; original 2 500 000.
        # VAT exempt: 6 000 000 ÷ 1.05 = 5 714 285.714… → 5 714 285.71; × 5 % = 285 714.2855 → 285 714.29
        # surcharges on 285 714.29: 20 000.0003 → 20 000.00; 8 571.4287 → 8 571.43; 5 714.2858 → 5 714.29
        # deed: due 180 000; payable 2 % 120 000; relief 60 000
        # PIT: 3 500 000 × 20 % = 700 000
        # payable: 120 000 + 700 000 + 80 = 820 080.00
        dict(unit_number=SHENZHEN, price=D("6000000"), area=D("140.01"), ordinary_housing=False,
             contract_date=date(2025, 6, 30), seller_acquired_on=date(2015, 6, 30),
             seller_original_price=D("2500000"), buyer_homes_before=1),
        [("契税", "6000000.00", "180000.00", "60000.00", "120000.00"),
         exempt("增值税", "5714285.71", "285714.29"),
         *vat_surcharges("285714.29", "20000.00", "8571.43", "5714.29", relieved=True),
         paid("个人所得税", "3500000.00", "700000.00"), FEE],
        "820080.00", "公告2024年第16号 家庭第二套改善性住房 面积>140㎡ 2%",
        id="2024-tier1-shenzhen-second-home-relief",
    ),
    pytest.param(
        # 2024 regime, the buyer's third home (3 %); held 1 year; original 900 000.
        # VAT: 952 380.95; 47 619.05; surcharges 3 333.33 + 1 428.57 + 952.38 = 5 714.28
        # deed: base 1 000 000 − 47 619.05 = 952 380.95; 3 % 28 571.4285 → 28 571.43, no relief
        # PIT: 952 380.95 − 900 000 − 5 714.28 = 46 666.67 × 20 % = 9 333.334 → 9 333.33
        # payable: 28 571.43 + 47 619.05 + 5 714.28 + 9 333.33 + 80 = 91 318.09
        dict(price=D("1000000"), area=D("60"), contract_date=date(2025, 1, 15), seller_acquired_on=date(2023, 7, 1),
             seller_original_price=D("900000"), buyer_homes_before=2),
        [("契税", "952380.95", "28571.43", "0.00", "28571.43"),
         paid("增值税", "952380.95", "47619.05"),
         *vat_surcharges("47619.05", "3333.33", "1428.57", "952.38", relieved=False),
         paid("个人所得税", "46666.67", "9333.33"), FEE],
        "91318.09", "家庭第3套住房 3%",
        id="2024-third-home-general-rate",
    ),
    pytest.param(
        # 2024 regime, a shop (non-residential), original 1 050 000 known, held 3 years: VAT on the gain.
        # VAT: (2 100 000 − 1 050 000) ÷ 1.05 = 1 000 000.00; × 5 % = 50 000.00
        # surcharges on 50 000: 3 500.00; 1 500.00; 1 000.00 (sum 6 000)
        # deed: base 2 100 000 − 50 000 = 2 050 000; 3 % 61 500
        # PIT: 2 050 000 − 1 050 000 − 6 000 = 994 000 × 20 % = 198 800
        # fee: non-residential 550
        # payable: 61 500 + 50 000 + 6 000 + 198 800 + 550 = 316 850.00
        dict(price=D("2100000"), area=D("150"), residential=False, contract_date=date(2025, 2, 10),
             seller_acquired_on=date(2022, 1, 5), seller_original_price=D("1050000"), seller_only_home=True),
        [("契税", "2050000.00", "61500.00", "0.00", "61500.00"),
         paid("增值税", "1000000.00", "50000.00"),
         *vat_surcharges("50000.00", "3500.00", "1500.00", "1000.00", relieved=False),
         paid("个人所得税", "994000.00", "198800.00"), FEE_NON_RESIDENTIAL],
        "316850.00", "非住房 3%",
        id="2024-non-residential-original-known",
    ),
    pytest.param(
        # 2016 regime, non-residential, original unknown, held 8 years (no exemption for non-residential),
        # one extra certificate.
        # VAT on the full price: 1 050 000 ÷ 1.05 = 1 000 000.00; × 5 % = 50 000.00; surcharges 6 000
        # deed: base 1 050 000 − 50 000 = 1 000 000; 3 % 30 000
        # PIT: 1 % × 1 000 000 = 10 000 (seller_only_home does not matter for a shop)
        # fees: 550 + 10
        # payable: 30 000 + 50 000 + 6 000 + 10 000 + 560 = 96 560.00
        dict(price=D("1050000"), area=D("45.5"), residential=False, contract_date=date(2019, 4, 1),
             seller_acquired_on=date(2011, 4, 1), seller_only_home=True, extra_certificates=1),
        [("契税", "1000000.00", "30000.00", "0.00", "30000.00"),
         paid("增值税", "1000000.00", "50000.00"),
         *vat_surcharges("50000.00", "3500.00", "1500.00", "1000.00", relieved=False),
         paid("个人所得税", "1000000.00", "10000.00"), FEE_NON_RESIDENTIAL, paid("证书工本费", "1.00", "10.00")],
        "96560.00", "非住房 3%",
        id="2016-non-residential-original-unknown",
    ),
    pytest.param(
        # 2016 regime, 广州 non-ordinary held exactly 3 years, original unknown → VAT on the full price;
        # buyer's second home in 广州 → 3 %.
        # VAT: 3 150 000 ÷ 1.05 = 3 000 000.00; × 5 % = 150 000; surcharges 10 500 + 4 500 + 3 000 = 18 000
        # deed: base 3 150 000 − 150 000 = 3 000 000; 3 % 90 000
        # PIT: original unknown, non-ordinary 2 % × 3 000 000 = 60 000
        # payable: 90 000 + 150 000 + 18 000 + 60 000 + 80 = 318 080.00
        dict(unit_number=GUANGZHOU, price=D("3150000"), area=D("100"), ordinary_housing=False,
             contract_date=date(2022, 8, 8), seller_acquired_on=date(2019, 8, 8), buyer_homes_before=1),
        [("契税", "3000000.00", "90000.00", "0.00", "90000.00"),
         paid("增值税", "3000000.00", "150000.00"),
         *vat_surcharges("150000.00", "10500.00", "4500.00", "3000.00", relieved=False),
         paid("个人所得税", "3000000.00", "60000.00"), FEE],
        "318080.00", "广州市不适用减征 3%",
        id="2016-tier1-guangzhou-non-ordinary-original-unknown",
    ),
    pytest.param(
        # 2024 regime, a price in fen, only home 89.99 m²; held 0 years (2024-10-02 → 2025-10-01);
        # sold below the original price: PIT base 0.
        # VAT: 1 234 567.89 ÷ 1.05 = 1 175 778.942… → 1 175 778.94; × 5 % = 58 788.947 → 58 788.95
        # surcharges on 58 788.95: 4 115.2265 → 4 115.23; 1 763.6685 → 1 763.67; 1 175.779 → 1 175.78
        #   (sum 7 054.68)
        # deed: base 1 234 567.89 − 58 788.95 = 1 175 778.94; due 3 % 35 273.3682 → 35 273.37;
        #   payable 1 % 11 757.7894 → 11 757.79; relief 23 515.58
        # PIT: 1 175 778.94 − 1 300 000 − 7 054.68 < 0 → 0
        # payable: 11 757.79 + 58 788.95 + 7 054.68 + 0 + 80 = 77 681.42
        dict(price=D("1234567.89"), area=D("89.99"), contract_date=date(2025, 10, 1),
             seller_acquired_on=date(2024, 10, 2), seller_original_price=D("1300000")),
        [("契税", "1175778.94", "35273.37", "23515.58", "11757.79"),
         paid("增值税", "1175778.94", "58788.95"),
         *vat_surcharges("58788.95", "4115.23", "1763.67", "1175.78", relieved=False),
         paid("个人所得税", "0.00", "0.00"), FEE],
        "77681.42", "家庭唯一住房 面积≤140㎡ 1%",
        id="2024-price-in-fen-loss-pit-zero",
    ),
]


@pytest.mark.parametrize("fields, expected, total_payable, deed_basis", CASES)
def test_assessment_to_the_fen(fields, expected, total_payable, deed_basis):
    lines = assess(request(**fields), RATES)
    got = [(line.item, str(line.base), str(line.due), str(line.relief), str(line.payable)) for line in lines]
    assert got == [tuple(row) for row in expected]
    for line in lines:
        assert line.payable == line.due - line.relief
        assert line.payer == ("buyer" if line.item in {"契税", "不动产登记费", "证书工本费"} else "seller")
        assert line.basis
    assert deed_basis in lines[0].basis
    due, relief, payable = totals(lines)
    assert str(payable) == total_payable
    assert due - relief == payable


def test_the_table_has_at_least_fourteen_cases_across_both_regimes():
    dates = [p.values[0]["contract_date"] for p in CASES]
    assert len(CASES) >= 14
    assert any(d <= date(2024, 11, 30) for d in dates) and any(d >= date(2024, 12, 1) for d in dates)


# ---------------------------------------------------------------------------- single rules


def vat_line(**fields):
    return next(line for line in assess(request(**fields), RATES) if line.item == "增值税")


def test_two_years_held_is_counted_by_anniversary():
    base = dict(price=D("1050000"), area=D("80"), seller_acquired_on=date(2022, 3, 15))
    day_before = vat_line(contract_date=date(2024, 3, 14), **base)
    anniversary = vat_line(contract_date=date(2024, 3, 15), **base)
    assert (day_before.payable, anniversary.payable) == (D("50000.00"), D("0.00"))
    assert "不足2年" in day_before.basis and "免征" in anniversary.basis
    # 730 days after 2022-03-15 is 2024-03-14 (2024 is a leap year): days ÷ 365 would say 2 years
    assert date(2022, 3, 15) + timedelta(days=730) == date(2024, 3, 14)


def test_full_years_from_29_february():
    assert full_years(date(2020, 2, 29), date(2022, 2, 28)) == 1
    assert full_years(date(2020, 2, 29), date(2022, 3, 1)) == 2
    assert full_years(date(2020, 2, 29), date(2024, 2, 29)) == 4


def test_manwu_weiyi_needs_five_full_years_and_the_only_home():
    base = dict(price=D("2000000"), area=D("100"), seller_acquired_on=date(2020, 7, 1),
                seller_original_price=D("1000000"))
    pit = {}
    for label, contract, only in [("4y364d", date(2025, 6, 30), True), ("5y", date(2025, 7, 1), True),
                                  ("5y-not-only", date(2025, 7, 1), False)]:
        lines = assess(request(contract_date=contract, seller_only_home=only, **base), RATES)
        pit[label] = next(line for line in lines if line.item == "个人所得税")
    # (2 000 000 − 1 000 000) × 20 % = 200 000 in each; only 满五唯一 relieves it
    assert [p.due for p in pit.values()] == [D("200000.00")] * 3
    assert [p.payable for p in pit.values()] == [D("200000.00"), D("0.00"), D("200000.00")]
    assert "满五唯一" in pit["5y"].basis


def test_tier1_ordinary_housing_is_exempt_before_the_switch():
    # 上海 ordinary, held 3 years, 2023: exempt; the same flat non-ordinary pays on the gain:
    # (3 000 000 − 1 950 000) ÷ 1.05 = 1 000 000.00 × 5 % = 50 000.00
    base = dict(unit_number=SHANGHAI_UNIT, price=D("3000000"), area=D("100"), contract_date=date(2023, 5, 1),
                seller_acquired_on=date(2020, 1, 1), seller_original_price=D("1950000"))
    assert vat_line(ordinary_housing=True, **base).payable == D("0.00")
    non_ordinary = vat_line(ordinary_housing=False, **base)
    assert (non_ordinary.base, non_ordinary.payable) == (D("1000000.00"), D("50000.00"))
    assert "上海市" in non_ordinary.basis and "差额" in non_ordinary.basis


def test_no_regime_before_the_table():
    with pytest.raises(BusinessError) as exc:
        assess(request(price=D("1000000"), area=D("80"), contract_date=date(2016, 2, 21),
                       seller_acquired_on=date(2010, 1, 1)), RATES)
    assert exc.value.code == "TAX_NO_REGIME" and exc.value.detail["kind"] == "契税"
    # between the deed-tax relief (2016-02-22) and VAT (2016-05-01) a transfer paid 营业税: not modelled
    with pytest.raises(BusinessError) as exc:
        assess(request(price=D("1000000"), area=D("80"), contract_date=date(2016, 4, 30),
                       seller_acquired_on=date(2010, 1, 1)), RATES)
    assert exc.value.code == "TAX_NO_REGIME" and exc.value.detail["kind"] == "增值税"
    assert "2016-04-30" in exc.value.message


def test_the_general_rate_names_the_law_in_force_on_the_contract_date():
    fields = dict(price=D("1000000"), area=D("80"), seller_acquired_on=date(2010, 1, 1), buyer_homes_before=2)
    before = assess(request(contract_date=date(2021, 8, 31), **fields), RATES)[0]
    after = assess(request(contract_date=date(2021, 9, 1), **fields), RATES)[0]
    assert before.basis.startswith("契税暂行条例") and after.basis.startswith("契税法")
    assert before.payable == after.payable == D("30000.00")  # held ≥ 2 years: no VAT, base the full price


def test_acquired_after_the_contract_is_refused():
    with pytest.raises(BusinessError) as exc:
        assess(request(price=D("1000000"), area=D("80"), contract_date=date(2025, 1, 1),
                       seller_acquired_on=date(2025, 1, 2)), RATES)
    assert exc.value.code == "TAX_BAD_REQUEST"


def test_stamp_duty_is_configurable(tmp_path: Path):
    data = json.loads(DEFAULT_RATES_PATH.read_text(encoding="utf-8"))
    assert all(d["residential_rate"] == "0" and d["non_residential_rate"] == "0" for d in data["stamp_duty"])
    data["stamp_duty"][0]["non_residential_rate"] = "0.0005"
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    lines = assess(request(price=D("2100000"), area=D("150"), residential=False, contract_date=date(2025, 2, 10),
                           seller_acquired_on=date(2022, 1, 5), seller_original_price=D("1050000")),
                   load_rates(path))
    # 2 100 000 × 0.05 % = 1 050.00 for each party
    stamp = [(line.payer, line.payable) for line in lines if line.item == "印花税"]
    assert stamp == [("buyer", D("1050.00")), ("seller", D("1050.00"))]


def test_every_entry_is_dated_and_names_its_basis():
    data = json.loads(DEFAULT_RATES_PATH.read_text(encoding="utf-8"))
    kinds = ["deed_tax", "vat", "surcharges", "income_tax", "stamp_duty", "registration_fee"]
    for kind in kinds:
        for entry in data[kind]:
            assert "effective_from" in entry and "effective_to" in entry and entry["basis"], (kind, entry)
    assert [e["effective_to"] for e in data["deed_tax"]][-2:] == ["2024-11-30", None]


def test_overlapping_entries_are_rejected(tmp_path: Path):
    data = json.loads(DEFAULT_RATES_PATH.read_text(encoding="utf-8"))
    data["deed_tax"][-2]["effective_to"] = "2024-12-01"
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValidationError, match="overlaps"):
        load_rates(path)


# ---------------------------------------------------------------------------- the sandbox


@pytest.fixture
def tax(db, clock) -> SandboxTax:
    authority = SandboxTax(db, clock)
    # the sandbox tables are not the registry's, so the db fixture does not empty them on PostgreSQL
    with db.write() as s:
        for table in reversed(TAX_TABLES):
            s.execute(table.delete())
    return authority


SALE = dict(price=D("1500000"), area=D("85.5"), contract_date=date(2021, 5, 10), seller_acquired_on=date(2020, 1, 20),
            seller_original_price=D("1200000"), buyer_homes_before=1)  # the third row of CASES: 138 365.71
SALE_CASE = "ZY2026000001"


def test_sandbox_implements_the_protocol(tax):
    assert isinstance(tax, SandboxTax)
    authority: TaxAuthority = tax  # checked by type checkers; at run time, the methods exist
    for name in ("assess", "get", "pay", "receive_result"):
        assert callable(getattr(authority, name))


def test_assess_is_idempotent_per_key_and_per_case(tax):
    first = tax.assess(request(**SALE), "ZY2026000001:tax_assess:assess")
    assert first.assessment_no == "SH330106202611230001"
    assert first.status == "assessed" and first.total_payable == D("138365.71")
    assert first.assessed_at == datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    retry = tax.assess(request(**SALE), "ZY2026000001:tax_assess:assess")
    other_key = tax.assess(request(**{**SALE, "price": D("1500000.00")}), "ZY2026000001:tax_assess_2:assess")
    assert retry == first and other_key == first
    charges = tax.charges_for("ZY2026000001")
    assert (charges.assessments, charges.live, charges.payments) == (1, 1, 0)
    assert tax.get(first.assessment_no) == first


def test_totals_are_the_sums_of_the_lines(tax):
    a = tax.assess(request(**SALE), "k1")
    assert a.total_due == sum(line.due for line in a.lines)
    assert a.total_relief == sum(line.relief for line in a.lines)
    assert a.total_payable == sum(line.payable for line in a.lines) == a.total_due - a.total_relief
    assert a.lines == assess(request(**SALE), RATES)


def test_different_figures_for_an_assessed_case_are_refused_until_cancelled(tax):
    first = tax.assess(request(**SALE), "k1")
    changed = request(**{**SALE, "price": D("1600000")})
    with pytest.raises(BusinessError) as exc:
        tax.assess(changed, "k2")
    assert exc.value.code == "TAX_ALREADY_ASSESSED" and exc.value.detail["assessment_no"] == first.assessment_no
    with pytest.raises(BusinessError):
        tax.assess(changed, "k1")  # the first key with other figures: refused the same way
    cancelled = tax.cancel(first.assessment_no, "成交价更正", "c1")
    assert cancelled.status == "cancelled"
    assert tax.cancel(first.assessment_no, "成交价更正", "c1") == cancelled
    second = tax.assess(changed, "k2")
    assert second.assessment_no == "SH330106202611230002" and second.status == "assessed"
    assert tax.assess(changed, "k2") == second
    charges = tax.charges_for(SALE_CASE)
    assert (charges.assessments, charges.live) == (2, 1)
    with pytest.raises(BusinessError) as exc:
        tax.pay(first.assessment_no, "p-old")
    assert exc.value.code == "TAX_CANCELLED"



def test_pay_then_get_shows_paid_with_a_voucher(tax, clock: FrozenClock):
    a = tax.assess(request(**SALE), "k1")
    clock.advance(minutes=30)
    receipt = tax.pay(a.assessment_no, "ZY2026000001:pay")
    assert receipt.status == "paid"
    assert receipt.voucher_no is not None and len(receipt.voucher_no) == 20 and receipt.voucher_no.isdigit()
    assert receipt.voucher_no == "33010620261123000001"
    assert receipt.paid_at == datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
    assert tax.get(a.assessment_no) == receipt
    clock.advance(hours=1)
    assert tax.pay(a.assessment_no, "ZY2026000001:pay") == receipt  # the retried call
    assert tax.pay(a.assessment_no, "another-key") == receipt  # paying a paid one returns it
    charges = tax.charges_for(SALE_CASE)
    assert (charges.assessments, charges.payments, charges.paid_total) == (1, 1, D("138365.71"))
    with pytest.raises(BusinessError) as exc:
        tax.cancel(a.assessment_no, "撤件", "c1")
    assert exc.value.code == "TAX_ALREADY_PAID"
    # the same figures after payment: the paid assessment, no second charge; other figures: refused
    assert tax.assess(request(**SALE), "k-again") == receipt
    with pytest.raises(BusinessError) as exc:
        tax.assess(request(**{**SALE, "area": D("86")}), "k-changed")
    assert exc.value.code == "TAX_ALREADY_ASSESSED" and "退税" in exc.value.message


def test_unknown_assessment_number(tax):
    for call in (lambda: tax.get("SH330106202611239999"), lambda: tax.pay("SH330106202611239999", "p1")):
        with pytest.raises(BusinessError) as exc:
            call()
        assert exc.value.code == "TAX_UNKNOWN"
        assert "SH330106202611239999" in exc.value.message


def test_numbers_run_per_county_and_day(tax, clock: FrozenClock):
    a = tax.assess(request(**SALE), "a")
    b = tax.assess(request(**{**SALE, "case_number": "ZY2026000002"}), "b")
    c = tax.assess(request(**{**SALE, "case_number": "ZY2026000003", "unit_number": SHANGHAI_UNIT}), "c")
    clock.advance(days=1)
    d = tax.assess(request(**{**SALE, "case_number": "ZY2026000004"}), "d")
    assert [x.assessment_no for x in (a, b, c, d)] == [
        "SH330106202611230001", "SH330106202611230002", "SH310104202611230001", "SH330106202611240001"]


def test_a_key_reused_for_another_case_is_refused(tax):
    tax.assess(request(**SALE), "k1")
    with pytest.raises(BusinessError) as exc:
        tax.assess(request(**{**SALE, "case_number": "ZY2026000009"}), "k1")
    assert exc.value.code == "TAX_IDEMPOTENCY_CONFLICT"


def test_receive_result_is_idempotent(tax):
    a = tax.assess(request(**SALE), "k1")
    result = {"certificate_no": "浙(2026)杭州市不动产权第0000001号", "registered_on": date(2026, 11, 24)}
    tax.receive_result(SALE_CASE, result, "share-1")
    tax.receive_result(SALE_CASE, result, "share-1")
    assert tax.results_for(SALE_CASE) == [{"certificate_no": "浙(2026)杭州市不动产权第0000001号",
                                           "registered_on": "2026-11-24"}]
    assert tax.charges_for(SALE_CASE).assessments == 1 and a.status == "assessed"


def test_concurrent_assessments_of_one_case_create_one(tax):
    answers: list = []
    errors: list = []

    def call(i: int) -> None:
        try:
            answers.append(tax.assess(request(**SALE), f"worker-{i}"))
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {a.assessment_no for a in answers} == {"SH330106202611230001"}
    assert tax.charges_for(SALE_CASE).assessments == 1


def test_concurrent_payments_issue_one_voucher(tax):
    a = tax.assess(request(**SALE), "k1")
    vouchers: list = []
    threads = [threading.Thread(target=lambda i=i: vouchers.append(tax.pay(a.assessment_no, f"p{i}").voucher_no))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(vouchers) == 6 and len(set(vouchers)) == 1
    assert tax.charges_for(SALE_CASE).payments == 1
