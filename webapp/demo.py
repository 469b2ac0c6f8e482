"""Demo data: processes deployed, the sandbox departments and the register filled with the same
believable Hangzhou units, owners, contracts and seizures, and cases waiting at different steps."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.sandbox_seed import SeedData, land_only_unit, seed_data, seed_departments
from domain import register
from engine import Actor, Engine
from webapp.accounts import AccountPolicy, Accounts, generate_password

CLERK = Actor.of("demo_clerk", "window_clerk")
REVIEWER = Actor.of("demo_reviewer", "reviewer")
MIGRATION = "存量数据导入"  # the "case" that brought pre-existing register entries into the system

# One demo user per role: login, display name, roles. The README's quick start lists them.
DEMO_USERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("window", "王敏（窗口）", ("window_clerk",)),
    ("reviewer", "李静（审核）", ("reviewer",)),
    ("registrar", "赵磊（登簿）", ("registrar",)),
    ("desk", "周婷（发证）", ("certificate_desk",)),
    ("supervisor", "陈刚（主管）", ("supervisor",)),
    ("admin", "孙伟（管理员）", ("admin",)),
    ("designer", "何芳（流程设计）", ("designer",)),
]
DEMO_OFFICE = "杭州市不动产登记中心 一窗受理大厅"


def seed(engine: Engine, processes: Path) -> Iterator[str]:
    yield from seed_users(engine)
    for r in engine.deploy_paths([processes], "demo", "demo seed"):
        yield f"deployed {r.process_id} v{r.version}"
    services = engine.services
    if services is not None and hasattr(services.housing, "add_sale_contract"):
        data = seed_departments(services.housing, services.court)
        yield f"sandbox departments: {sum(data.created.values())} records created"
    else:
        data = seed_data()
    created = seed_register(engine, data)
    yield f"register: {created} entries created"
    yield from seed_cases(engine, data)


def seed_users(engine: Engine, password: str | None = None) -> Iterator[str]:
    """A demo user per role; users already there are left alone (their passwords too).

    Each new user gets a random password, printed here once — or `password`
    (ONEWINDOW_DEMO_PASSWORD) for all of them, for scripted demos and browser tests.
    """
    password = password or os.environ.get("ONEWINDOW_DEMO_PASSWORD") or None
    accounts = Accounts(engine.db, engine.clock, AccountPolicy.from_env())
    created = []
    for login, name, roles in DEMO_USERS:
        if accounts.by_login(login) is not None:
            continue
        secret = password or generate_password()
        accounts.create_user(login, name, secret, roles, office=DEMO_OFFICE)
        created.append((login, roles, secret))
    if not created:
        yield "demo users: already there (reset a password with `onewindow user passwd LOGIN`)"
        return
    yield "demo users (passwords shown once; change them with `onewindow user passwd LOGIN`):"
    for login, roles, secret in created:
        yield f"  {login:<11} {secret if not password else '(ONEWINDOW_DEMO_PASSWORD)':<16} {', '.join(roles)}"


def seed_register(engine: Engine, data: SeedData) -> int:
    """The seed's units, owners, the developer's land and the seizures, in the register; idempotent."""
    now = engine.clock.now()
    created = 0
    with engine.db.write() as s:
        for u in data.units:
            if register.get_unit(s, u.unit_number) is not None:
                continue
            register.add_unit(s, u.unit_number, address=u.address, use=_use(u.use), now=now, area=u.area,
                              building=u.building, floor=str(u.floor), room=u.room, case_number=MIGRATION)
            joint = u.ownership == "共同共有" and len(u.owners) > 1
            holders = [{"name": p.name, "id_number": p.id_number, "id_type": p.id_type,
                        **({"share": "共同共有"} if joint else {})} for p in u.owners]
            register.register_ownership(s, u.unit_number, holders, case_number=MIGRATION, now=now,
                                        details={"certificate_no": u.certificate_no,
                                                 "acquired_on": u.acquired_on.isoformat()})
            created += 2
        project = data.presale_project
        land = land_only_unit(project.units[0].unit_number)
        if register.get_unit(s, land) is None:
            register.add_unit(s, land, address=f"{project.name}项目用地", use="non_residential", now=now,
                              case_number=MIGRATION)
            developer = project.developer
            register.register_ownership(s, land, [{"name": developer.name, "id_number": developer.id_number,
                                                   "id_type": developer.id_type}],
                                        case_number=MIGRATION, now=now, details={"right": "国有建设用地使用权"})
            created += 2
        for pu in project.units:
            if register.get_unit(s, pu.unit_number) is None:
                register.add_unit(s, pu.unit_number, address=pu.address, use="residential", now=now, area=pu.area,
                                  building=pu.building, floor=str(pu.floor), room=pu.room, case_number=MIGRATION)
                created += 1
        for z in data.seizures:
            known = {r.document_number for r in register.current_rights(s, z.unit_number, ["seizure"])}
            if z.document_no in known or register.get_unit(s, z.unit_number) is None:
                continue
            register.register_seizure(s, z.unit_number, court=z.court, document_number=z.document_no,
                                      term_start=z.starts_on, term_end=z.ends_on, case_number=MIGRATION, now=now)
            created += 1
    return created


def seed_cases(engine: Engine, data: SeedData) -> Iterator[str]:
    if engine.task_list(Actor.of("demo", "window_clerk", "reviewer", "registrar"), limit=1):
        yield "demo cases: already there"
        return
    for i, u in enumerate(data.units[:5]):
        owner = u.owners[0]
        case_data: dict[str, Any] = {"applicant": owner.name, "id_number": owner.id_number, "address": u.address,
                                     "unit_number": u.unit_number, "promised_workdays": 5}
        ref = engine.start_case("general_registration", case_data, CLERK,
                                summary={"applicant": owner.name, "address": u.address, "unit_number": u.unit_number})
        if i >= 2:
            accept = next(t for t in engine.case_tasks(ref.id) if t["bpmn_id"] == "accept")
            engine.complete_task(accept["id"], {"materials_complete": True}, CLERK)
        if i >= 4:
            review = next(t for t in engine.case_tasks(ref.id) if t["bpmn_id"] == "review")
            engine.complete_task(review["id"], {"approved": True, "opinion": "材料齐全，同意登记"}, REVIEWER)
        yield f"case {ref.case_number}: {owner.name} {u.address}"


def _use(label: str) -> str:
    return "residential" if label in ("住宅", "residential") else "non_residential"
