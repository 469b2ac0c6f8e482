"""Certificate numbers under concurrency: 20 issuers at once, some rolled back — no gap, no duplicate."""
from __future__ import annotations

import threading
import time

from sqlalchemy import select

from domain import register as reg
from storage.db import Database
from storage.models import Counter, RegisterCertificate
from tests.register_data import NOW, ZHANG, add_units

OFFICE = reg.Office()
ISSUERS = 20


class _RollBack(Exception):
    """Raised inside a transaction on purpose, after a number was drawn."""


def test_twenty_concurrent_issuers_get_unique_gapless_numbers(db: Database) -> None:
    # one flat per issuer, so nothing but the counter row stands between them
    flats = [f"320684413219GB00029F0002{i + 1:04d}" for i in range(ISSUERS)]
    with db.write() as s:
        add_units(s, *flats)
        rights = [reg.register_ownership(s, flat, [dict(ZHANG, id_number=f"32068419800315{i:04d}")],
                                         case_number="2026-000002", now=NOW).id for i, flat in enumerate(flats)]
    start = threading.Barrier(ISSUERS)
    lock = threading.Lock()
    committed: dict[int, str] = {}
    rolled_back: list[int] = []
    errors: list[BaseException] = []

    def issue(i: int) -> None:
        try:
            start.wait(timeout=30)
            with db.write() as s:
                cert = reg.issue_certificate(s, OFFICE, "title", rights[i], f"2026-{i:06d}", NOW)
                time.sleep(0.01)  # hold the counter row a moment, so the others queue behind it
                if i % 4 == 0:
                    raise _RollBack(cert.serial)
            with lock:
                committed[i] = cert.number
        except _RollBack as rb:
            with lock:
                rolled_back.append(rb.args[0])
        except BaseException as err:  # reported below
            with lock:
                errors.append(err)

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(ISSUERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(rolled_back) == 5 and len(committed) == ISSUERS - 5

    expected = [f"浙(2026)杭州市不动产权第{n:07d}号" for n in range(1, ISSUERS - 5 + 1)]
    assert sorted(committed.values()) == expected  # each number once, none skipped
    with db.read() as s:
        rows = s.execute(select(RegisterCertificate.serial, RegisterCertificate.number)
                         .order_by(RegisterCertificate.serial)).all()
        assert [r.serial for r in rows] == list(range(1, ISSUERS - 5 + 1))
        assert [r.number for r in rows] == expected
        counter = s.scalar(select(Counter.value).where(Counter.name == "certificate:330100:title:2026"))
        assert counter == ISSUERS - 5  # the rolled-back transactions gave their numbers back
    # numbers drawn by rolled-back issuers went to later issuers, or were never used
    assert all(1 <= n <= ISSUERS for n in rolled_back)
