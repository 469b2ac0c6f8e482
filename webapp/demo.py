"""Demo data: the processes in processes/ deployed, and cases waiting at different steps."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from engine import Actor, Engine

CLERK = Actor.of("demo_clerk", "window_clerk")
REVIEWER = Actor.of("demo_reviewer", "reviewer")

APPLICANTS = [
    ("张伟", "330106199001011234", "西湖区文三路 88 号 2 幢 1 单元 501 室"),
    ("王芳", "330102198805052345", "上城区解放路 16 号 3 幢 302 室"),
    ("李娜", "330105199203153456", "拱墅区湖墅南路 120 号 1 幢 1201 室"),
    ("刘洋", "330108198511204567", "滨江区江南大道 300 号 5 幢 803 室"),
    ("陈静", "330110199307075678", "余杭区五常大道 18 号 9 幢 1502 室"),
]


def seed(engine: Engine, processes: Path) -> Iterator[str]:
    for r in engine.deploy_paths([processes], "demo", "demo seed"):
        yield f"deployed {r.process_id} v{r.version}"
    for i, (name, id_no, address) in enumerate(APPLICANTS):
        data = {"applicant": name, "id_number": id_no, "address": address, "promised_workdays": 5}
        ref = engine.start_case("general_registration", data, CLERK,
                                summary={"applicant": name, "address": address})
        if i >= 2:
            accept = next(t for t in engine.case_tasks(ref.id) if t["bpmn_id"] == "accept")
            engine.complete_task(accept["id"], {"materials_complete": True}, CLERK)
        if i >= 4:
            review = next(t for t in engine.case_tasks(ref.id) if t["bpmn_id"] == "review")
            engine.complete_task(review["id"], {"approved": True, "opinion": "材料齐全，同意登记"}, REVIEWER)
        yield f"case {ref.case_number}: {name}"
