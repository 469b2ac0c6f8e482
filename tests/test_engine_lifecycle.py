"""Call activities, version pinning, claiming and reassigning tasks, suspend/resume/cancel."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import Actor, CaseNotActive, Conflict, InvalidInput, NotPermitted, TaskNotReady
from storage.models import TimerJob
from tests.conftest import BPMN_DIR, CLERK, DESK, REGISTRAR, REVIEWER, SUPERVISOR, bpmn, open_task

CLERK_LIU = Actor.of("clerk_liu", "window_clerk")
CLERK_ZHANG = Actor.of("clerk_zhang", "window_clerk")
PARALLEL_DATA = {"accepted_on": "2026-09-30", "limit_days": 5}


def start_parallel(engine, deploy: bool = True):
    if deploy:
        engine.deploy(bpmn("parallel.bpmn"), "designer")
    return engine.start_case("parallel_review", dict(PARALLEL_DATA), CLERK)


def history(engine, case_id: int, kind: str) -> list[dict]:
    return [e for e in engine.history(case_id) if e["kind"] == kind]


def running(engine, process_id: str) -> dict[int, int]:
    return {v["version"]: v["running_cases"] for v in engine.versions(process_id)}


# ---------------------------------------------------------------------------- call activity

def test_call_activity_task_is_listed_for_its_role_and_finishes_the_parent(engine):
    engine.deploy(bpmn("call_child.bpmn", "call_parent.bpmn"), "designer")
    case = engine.start_case("call_parent", {"applicant": "张三"}, CLERK)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)

    hand_over = open_task(engine, case.id, "hand_over")
    assert hand_over["role"] == "certificate_desk" and hand_over["name"] == "发放证书"
    assert hand_over["process_id"] == "call_parent"
    assert [t["id"] for t in engine.task_list(DESK)] == [hand_over["id"]]
    assert engine.task_list(CLERK) == []
    with pytest.raises(NotPermitted):
        engine.complete_task(hand_over["id"], {}, CLERK)

    engine.complete_task(hand_over["id"], {"certificate_no": "浙(2026)杭州市不动产权第0000001号"}, DESK)
    info = engine.get_case(case.id)
    assert info["status"] == "completed" and info["open_incidents"] == 0
    data = engine.case_data(case.id)
    assert data["archived"] is True  # the child's script ran
    assert data["certificate_no"] == "浙(2026)杭州市不动产权第0000001号"
    assert data["applicant"] == "张三"
    assert engine.task_list(DESK) == []


# ---------------------------------------------------------------------------- versions

def test_cases_stay_on_the_version_they_started_with(engine):
    v1_xml = (BPMN_DIR / "parallel.bpmn").read_bytes()
    v2_xml = v1_xml.replace('name="登簿"/>'.encode(), 'name="登簿（新）"/>'.encode())
    assert v2_xml != v1_xml
    [v1] = engine.deploy([("parallel.bpmn", v1_xml)], "designer")
    old = start_parallel(engine, deploy=False)
    [v2] = engine.deploy([("parallel.bpmn", v2_xml)], "designer", comment="改名")
    assert (v1.version, v2.version, v2.created) == (1, 2, True)
    [same] = engine.deploy([("parallel.bpmn", v2_xml)], "designer")
    assert (same.id, same.version, same.created) == (v2.id, 2, False)
    assert running(engine, "parallel_review") == {1: 1, 2: 0}

    new = start_parallel(engine, deploy=False)
    assert engine.get_case(old.id)["version"] == 1 and engine.get_case(new.id)["version"] == 2
    assert running(engine, "parallel_review") == {1: 1, 2: 1}

    for case, register_name in ((old, "登簿"), (new, "登簿（新）")):
        engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)
        engine.complete_task(open_task(engine, case.id, "review")["id"], {"approved": True}, REVIEWER)
        register = open_task(engine, case.id, "register")
        assert register["name"] == register_name
        engine.complete_task(register["id"], {}, REGISTRAR)
        assert engine.get_case(case.id)["status"] == "completed"
    assert running(engine, "parallel_review") == {1: 0, 2: 0}


def test_running_parent_keeps_the_child_version_it_started_with(engine):
    engine.deploy(bpmn("call_child.bpmn", "call_parent.bpmn"), "designer")
    old = engine.start_case("call_parent", {}, CLERK)
    engine.complete_task(open_task(engine, old.id, "accept")["id"], {}, CLERK)
    child_v2 = (BPMN_DIR / "call_child.bpmn").read_bytes().replace(
        'name="发放证书"'.encode(), 'name="发放证书并告知"'.encode())
    deployed = {d.process_id: d for d in engine.deploy([("call_child.bpmn", child_v2)], "designer")}
    assert deployed["call_child"].version == 2
    in_use = {v["process_id"]: v["version"] for v in engine.versions() if v["running_cases"]}
    assert in_use == {"call_parent": 1}
    new = engine.start_case("call_parent", {}, CLERK)
    assert engine.get_case(new.id)["version"] == 2  # the parent got a version calling the new child
    engine.complete_task(open_task(engine, new.id, "accept")["id"], {}, CLERK)
    assert open_task(engine, old.id, "hand_over")["name"] == "发放证书"
    assert open_task(engine, new.id, "hand_over")["name"] == "发放证书并告知"
    for case in (old, new):
        engine.complete_task(open_task(engine, case.id, "hand_over")["id"], {}, DESK)
        assert engine.get_case(case.id)["status"] == "completed"


# ---------------------------------------------------------------------------- claim / release / reassign

def test_claim_release_and_reassign_with_audit_and_permissions(engine):
    case = start_parallel(engine)
    accept = open_task(engine, case.id, "accept")
    with pytest.raises(NotPermitted):
        engine.claim_task(accept["id"], REVIEWER)  # not a window clerk

    engine.claim_task(accept["id"], CLERK)
    assert open_task(engine, case.id, "accept")["assignee"] == CLERK.name
    engine.claim_task(accept["id"], CLERK)  # claiming again is harmless
    assert [t["id"] for t in engine.task_list(CLERK, mine_only=True)] == [accept["id"]]
    assert engine.task_list(CLERK_LIU) == []  # claimed tasks leave the others' lists
    with pytest.raises(Conflict, match=CLERK.name):
        engine.claim_task(accept["id"], CLERK_LIU)
    with pytest.raises(NotPermitted, match=CLERK.name):
        engine.complete_task(accept["id"], {}, CLERK_LIU)
    with pytest.raises(NotPermitted):
        engine.release_task(accept["id"], CLERK_LIU)
    with pytest.raises(NotPermitted):
        engine.reassign_task(accept["id"], CLERK_LIU.name, CLERK)  # clerks cannot hand tasks on
    with pytest.raises(InvalidInput):
        engine.reassign_task(accept["id"], " ", SUPERVISOR)
    assert open_task(engine, case.id, "accept")["assignee"] == CLERK.name

    engine.reassign_task(accept["id"], CLERK_LIU.name, SUPERVISOR, reason="王某病假")
    assert open_task(engine, case.id, "accept")["assignee"] == CLERK_LIU.name
    with pytest.raises(NotPermitted):
        engine.complete_task(accept["id"], {}, CLERK)  # no longer hers
    engine.release_task(accept["id"], CLERK_LIU)
    assert open_task(engine, case.id, "accept")["assignee"] is None
    assert [t["id"] for t in engine.task_list(CLERK)] == [accept["id"]]  # back in the pool
    engine.claim_task(accept["id"], CLERK_LIU)
    engine.complete_task(accept["id"], {}, CLERK_LIU)
    rows = {t["bpmn_id"]: t for t in engine.case_tasks(case.id, open_only=False)}
    assert rows["accept"]["state"] == "completed" and rows["accept"]["closed_by"] == CLERK_LIU.name

    audit = [(e["kind"], e["actor"], e["detail"]) for e in engine.history(case.id)
             if e["kind"].startswith("task_") and e["bpmn_id"] == "accept"]
    assert audit == [
        ("task_claimed", CLERK.name, {}),
        ("task_reassigned", SUPERVISOR.name,
         {"previous": CLERK.name, "to": CLERK_LIU.name, "reason": "王某病假"}),
        ("task_released", CLERK_LIU.name, {"previous": CLERK_LIU.name}),
        ("task_claimed", CLERK_LIU.name, {}),
        ("task_completed", CLERK_LIU.name, {"data": {}}),
    ]


def test_supervisor_may_release_or_complete_a_claimed_task(engine):
    case = start_parallel(engine)
    accept = open_task(engine, case.id, "accept")
    engine.claim_task(accept["id"], CLERK)
    engine.release_task(accept["id"], SUPERVISOR)
    assert history(engine, case.id, "task_released")[0]["detail"] == {"previous": CLERK.name}
    engine.claim_task(accept["id"], CLERK)
    engine.complete_task(accept["id"], {}, SUPERVISOR)
    assert engine.case_tasks(case.id, open_only=False)[0]["closed_by"] == SUPERVISOR.name


def test_reassign_all_moves_every_open_task_of_an_absent_clerk(engine):
    cases = [start_parallel(engine, deploy=(i == 0)) for i in range(4)]
    for case in cases[:3]:
        engine.claim_task(open_task(engine, case.id, "accept")["id"], CLERK)
    engine.claim_task(open_task(engine, cases[3].id, "accept")["id"], CLERK_LIU)
    with pytest.raises(NotPermitted):
        engine.reassign_all(CLERK.name, CLERK_ZHANG.name, CLERK_LIU)

    moved = engine.reassign_all(CLERK.name, CLERK_ZHANG.name, SUPERVISOR, reason="王某休产假")
    assert moved == 3
    assert engine.task_list(CLERK, mine_only=True) == []
    assert sorted(t["case_id"] for t in engine.task_list(CLERK_ZHANG, mine_only=True)) == \
        sorted(c.id for c in cases[:3])
    assert [t["case_id"] for t in engine.task_list(CLERK_LIU, mine_only=True)] == [cases[3].id]
    for case in cases[:3]:
        [row] = history(engine, case.id, "task_reassigned")
        assert row["actor"] == SUPERVISOR.name
        assert row["detail"] == {"previous": CLERK.name, "to": CLERK_ZHANG.name, "reason": "王某休产假"}
    assert history(engine, cases[3].id, "task_reassigned") == []
    engine.complete_task(open_task(engine, cases[0].id, "accept")["id"], {}, CLERK_ZHANG)
    assert engine.reassign_all(CLERK.name, CLERK_ZHANG.name, SUPERVISOR) == 0


# ---------------------------------------------------------------------------- suspend / resume / cancel

def test_suspend_and_resume_need_a_reason_and_block_work_meanwhile(engine):
    case = start_parallel(engine)
    accept = open_task(engine, case.id, "accept")
    for blank in ("", "   ", None):
        with pytest.raises(InvalidInput):
            engine.suspend_case(case.id, blank, SUPERVISOR)
    assert engine.get_case(case.id)["status"] == "active"

    engine.suspend_case(case.id, "法院协助执行，暂停办理", SUPERVISOR)
    info = engine.get_case(case.id)
    assert (info["status"], info["status_reason"]) == ("suspended", "法院协助执行，暂停办理")
    with pytest.raises(CaseNotActive):
        engine.complete_task(accept["id"], {}, CLERK)
    with pytest.raises(CaseNotActive):
        engine.suspend_case(case.id, "再次挂起", SUPERVISOR)
    with pytest.raises(InvalidInput):
        engine.resume_case(case.id, " ", SUPERVISOR)
    assert open_task(engine, case.id, "accept")["state"] == "open"  # kept, only paused

    engine.resume_case(case.id, "已解除", SUPERVISOR)
    info = engine.get_case(case.id)
    assert (info["status"], info["status_reason"]) == ("active", None)
    with pytest.raises(CaseNotActive):
        engine.resume_case(case.id, "再次恢复", SUPERVISOR)
    engine.complete_task(accept["id"], {}, CLERK)
    assert open_task(engine, case.id, "review")
    suspended = [e["detail"]["reason"] for e in history(engine, case.id, "case_suspended")]
    assert suspended == ["法院协助执行，暂停办理"]
    assert [e["detail"]["reason"] for e in history(engine, case.id, "case_resumed")] == ["已解除"]


def test_cancel_closes_open_tasks_and_timers(engine, clock):
    case = start_parallel(engine)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)
    review = open_task(engine, case.id, "review")
    with pytest.raises(InvalidInput):
        engine.cancel_case(case.id, "  ", SUPERVISOR)
    assert engine.get_case(case.id)["status"] == "active"

    engine.cancel_case(case.id, "申请人撤回申请", SUPERVISOR)
    info = engine.get_case(case.id)
    assert (info["status"], info["status_reason"]) == ("cancelled", "申请人撤回申请")
    assert info["ended_at"] == clock.now()
    rows = {t["bpmn_id"]: t for t in engine.case_tasks(case.id, open_only=False)}
    assert rows["accept"]["state"] == "completed"
    assert rows["review"]["state"] == "cancelled" and rows["review"]["closed_at"] == clock.now()
    assert engine.case_tasks(case.id) == [] and engine.task_list(REVIEWER) == []
    with pytest.raises(TaskNotReady):
        engine.complete_task(review["id"], {"approved": True}, REVIEWER)
    for again in (engine.cancel_case, engine.resume_case, engine.suspend_case):
        with pytest.raises(CaseNotActive):
            again(case.id, "再来一次", SUPERVISOR)
    [event] = history(engine, case.id, "case_cancelled")
    assert event["actor"] == SUPERVISOR.name and event["detail"] == {"reason": "申请人撤回申请"}
    assert running(engine, "parallel_review") == {1: 0}

    # a case waiting on timers: cancelling drops them, nothing fires later
    engine.deploy(bpmn("timers.bpmn"), "designer")
    timed = engine.start_case("timers", {"accepted_at": "2026-11-23T09:00:00+08:00"}, REVIEWER)
    engine.cancel_case(timed.id, "重复申请", SUPERVISOR)
    with engine.db.read() as s:
        assert list(s.scalars(select(TimerJob).where(TimerJob.case_id == timed.id))) == []
    clock.advance(days=10)
    assert engine.run_due_jobs().fired == 0
    assert "reminders" not in engine.case_data(timed.id)
    assert [t["state"] for t in engine.case_tasks(timed.id, open_only=False)] == ["cancelled"]


def test_only_supervisors_and_admins_cancel_suspend_or_fix_incidents(engine):
    from engine import NotPermitted
    from tests.conftest import CLERK, REVIEWER

    engine.deploy(bpmn("parallel.bpmn"), "designer")
    case = engine.start_case("parallel_review", {"accepted_on": "2026-09-30", "limit_days": 5}, CLERK)
    for action in (lambda a: engine.cancel_case(case.id, "撤回", a),
                   lambda a: engine.suspend_case(case.id, "暂停", a)):
        for actor in (CLERK, REVIEWER):
            with pytest.raises(NotPermitted, match="主管或系统管理员"):
                action(actor)
    assert engine.get_case(case.id)["status"] == "active"
    assert [e["kind"] for e in engine.history(case.id)].count("case_cancelled") == 0


def test_an_error_no_one_catches_is_kept_in_the_history(engine):
    engine.deploy(bpmn("error_end.bpmn"), "designer")
    case = engine.start_case("error_end", {}, CLERK)
    thrown = [e for e in engine.history(case.id) if e["kind"] == "event_thrown"]
    assert len(thrown) == 1 and thrown[0]["detail"]["code"] == "REFUSED"
    assert engine.get_case(case.id)["status"] == "completed"


def test_a_file_defining_a_process_and_the_one_it_calls(engine):
    engine.deploy(bpmn("caller_and_callee.bpmn"), "designer")
    case = engine.start_case("outer", {}, CLERK)
    check = open_task(engine, case.id, "check")
    assert check["role"] == "reviewer"
    engine.complete_task(check["id"], {}, REVIEWER)
    assert engine.get_case(case.id)["status"] == "completed"
