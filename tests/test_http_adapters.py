"""The HTTP clients against the simulators: real HTTP on loopback, the real sandboxes behind it.

Every department simulator serves its sandbox on the test's database (SQLite and PostgreSQL);
faults are injected per request with `POST /_faults` (`script` gives exact sequences). The
clients run with short timeouts and tiny back-off so the faults cost milliseconds.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters import Departments
from adapters.common import Party
from adapters.court import CourtOrder
from adapters.factory import AdapterConfigError, departments
from adapters.housing import PresaleContract, SaleContract
from adapters.http_base import HttpSettings
from adapters.notify import Notification
from adapters.sandbox_seed import make_id_number
from adapters.simulators import FaultConfig, FaultInjector, RunningSimulators, start_simulators
from adapters.tax import TransferForTax
from adapters.tax.http import HttpTax
from domain.clock import FrozenClock
from domain.errors import BusinessError, TransientError
from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
READ_TIMEOUT = 0.3
FAST = HttpSettings(connect_timeout=READ_TIMEOUT, read_timeout=READ_TIMEOUT, attempts=3, backoff=0.01,
                    backoff_max=0.05, deadline=5.0)
FAST_ENV = {"ONEWINDOW_HTTP_CONNECT_TIMEOUT": "0.3", "ONEWINDOW_HTTP_READ_TIMEOUT": "0.3",
            "ONEWINDOW_HTTP_ATTEMPTS": "3", "ONEWINDOW_HTTP_BACKOFF": "0.01", "ONEWINDOW_HTTP_BACKOFF_MAX": "0.05",
            "ONEWINDOW_HTTP_DEADLINE": "5"}


# ---------------------------------------------------------------------------- fixtures and data

@pytest.fixture
def sims(db: Database, clock: FrozenClock) -> Iterator[RunningSimulators]:
    # a hang lasts longer than the client's read timeout, but not long enough to slow the test's end
    with start_simulators(db, clock, faults=FaultConfig(timeout_s=1.0, seed=20261123)) as running:
        yield running


@pytest.fixture
def http(sims: RunningSimulators) -> Iterator[Departments]:
    """The four HTTP clients, built the way the application builds them: from the environment."""
    env = {"ONEWINDOW_ADAPTERS": "http", **FAST_ENV,
           "ONEWINDOW_TAX_URL": sims.urls["tax"], "ONEWINDOW_HOUSING_URL": sims.urls["housing"],
           "ONEWINDOW_COURT_URL": sims.urls["court"], "ONEWINDOW_NOTIFY_URL": sims.urls["notify"]}
    deps = departments(None, env=env)  # type: ignore[arg-type]  # http mode needs no database
    yield deps
    for client in (deps.tax, deps.housing, deps.court, deps.notify):
        client.close()


def faults(sims: RunningSimulators, department: str, **changes: Any) -> FaultInjector:
    injector = sims.faults(department)
    injector.update({**changes, "reset_stats": True})
    return injector


def uid() -> str:
    return uuid.uuid4().hex[:10]


def unit_number() -> str:
    """A fresh, well-formed Hangzhou 西湖区 unit number (the PostgreSQL sandbox tables outlive a test)."""
    n = uuid.uuid4().int
    return f"330106003002GB{n % 99999 + 1:05d}F{n // 10**5 % 10**8:08d}"


def person(name: str) -> Party:
    n = uuid.uuid4().int
    born = date(1960 + n % 40, 1 + n // 40 % 12, 1 + n // 480 % 28)
    return Party(name=name, id_number=make_id_number("330106", born, 1 + n // 13440 % 998), phone="13800000000")


def transfer(case_number: str, unit: str | None = None) -> TransferForTax:
    return TransferForTax(
        case_number=case_number, unit_number=unit or unit_number(), price=Decimal("3000000"), area=Decimal("89.50"),
        contract_date=date(2026, 11, 2), buyer=person("李四"), buyer_homes_before=0, seller=person("张三"),
        seller_acquired_on=date(2015, 5, 1), seller_original_price=Decimal("1500000.00"), seller_only_home=True,
    )


# ---------------------------------------------------------------------------- faults

def test_a_timeout_is_retried_to_success(sims, http, caplog):
    injector = faults(sims, "tax", script=["timeout", "ok"])
    case = f"2026-T-{uid()}"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="adapters.http"):
        assessment = http.tax.assess(transfer(case), f"{case}:assess")
    assert READ_TIMEOUT <= time.monotonic() - started < 1.0  # waited out one read timeout, not the 1 s hang
    assert assessment.case_number == case and assessment.status == "assessed"
    assert injector.snapshot()["stats"] == {"ok": 1, "error": 0, "timeout": 1, "drop": 0}
    assert sims.service("tax").charges_for(case).assessments == 1
    retry = [r.getMessage() for r in caplog.records if r.name == "adapters.http"]
    assert retry == [retry[0]] and "tax authority: POST /tax/assessments try 1 of 3 failed" in retry[0]
    assert "no answer within the read timeout of 0.3 s" in retry[0]


def test_a_persistent_failure_is_a_transient_error_a_person_understands(sims, http):
    injector = faults(sims, "tax", error_rate=1.0)
    case = f"2026-T-{uid()}"
    with pytest.raises(TransientError) as err:
        http.tax.assess(transfer(case), f"{case}:assess")
    message = str(err.value)
    assert message.startswith(f"tax authority at {sims.urls['tax']}: POST /tax/assessments failed 3 times in ")
    assert "HTTP 503" in message and "unavailable" in message and "try again later" in message
    assert injector.snapshot()["stats"]["error"] == 3  # the attempt cap, no more
    assert sims.service("tax").charges_for(case).assessments == 0


@pytest.mark.parametrize("drop_mode", ["close", "502"])
def test_an_assessment_retried_after_a_lost_answer_charges_once(sims, http, drop_mode):
    injector = faults(sims, "tax", script=["drop", "ok"], drop_mode=drop_mode)
    case = f"2026-T-{uid()}"
    assessment = http.tax.assess(transfer(case), f"{case}:assess")
    assert injector.snapshot()["stats"] == {"ok": 1, "error": 0, "timeout": 0, "drop": 1}
    tax = sims.service("tax")
    charges = tax.charges_for(case)
    assert (charges.assessments, charges.live) == (1, 1)  # the first try did the work; the retry got it back
    assert tax.get(assessment.assessment_no) == assessment

    faults(sims, "tax", script=["drop", "ok"])  # the payment's answer is lost too: paid once
    paid = http.tax.pay(assessment.assessment_no, f"{case}:pay")
    assert paid.status == "paid" and paid.voucher_no
    charges = tax.charges_for(case)
    assert (charges.assessments, charges.payments, charges.paid_total) == (1, 1, assessment.total_payable)
    assert http.tax.pay(assessment.assessment_no, f"{case}:pay").voucher_no == paid.voucher_no


def test_without_a_server_the_error_says_it_could_not_connect():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    client = HttpTax(f"http://127.0.0.1:{port}", FAST)
    with pytest.raises(TransientError, match=r"tax authority at http://127\.0\.0\.1:\d+: GET /tax/assessments/SH1 "
                                             r"failed 3 times .*could not connect"):
        client.get("SH1")
    client.close()


def test_a_wrong_base_url_names_the_setting_to_check(sims):
    client = HttpTax(sims.urls["tax"] + "/v9", FAST)
    with pytest.raises(TransientError, match=r"answered HTTP 404 .* without a department error code.*"
                                             r"check ONEWINDOW_TAX_URL"):
        client.get("SH1")
    assert sims.faults("tax").snapshot()["stats"]["ok"] == 0  # never reached a department route
    client.close()


def test_a_garbled_answer_is_retried_then_transient():
    """A 200 that is not JSON, or not the model, is a fault of the moment: tried again, then transient."""
    answers = iter([httpx.Response(200, text="<html>proxy</html>")] + [httpx.Response(200, json={"x": 1})] * 2)
    client = HttpTax("http://tax.example", FAST, transport=httpx.MockTransport(lambda request: next(answers)))
    with pytest.raises(TransientError) as err:
        client.get("SH1")
    assert "failed 3 times" in str(err.value)
    assert "the answer does not fit TaxAssessment: assessment_no: Field required" in str(err.value)
    client.close()


def test_fault_draws_are_repeatable_with_a_seed():
    config = FaultConfig(error_rate=0.3, timeout_rate=0.1, drop_rate=0.2, seed=7, latency_ms=5, jitter_ms=10)
    one, two = FaultInjector(config), FaultInjector(config)
    draws = [one.draw() for _ in range(50)]
    assert draws == [two.draw() for _ in range(50)]
    assert {outcome for outcome, _ in draws} == {"ok", "error", "timeout", "drop"}
    assert all(0.005 <= latency <= 0.015 for _, latency in draws)
    with pytest.raises(ValueError, match="at most 1"):
        FaultConfig(error_rate=0.6, drop_rate=0.6)


def test_faults_change_at_run_time_over_http(sims):
    url = sims.urls["notify"] + "/_faults"
    answer = httpx.post(url, json={"latency_ms": 20, "drop_rate": 0.5, "seed": 1})
    assert answer.status_code == 200 and answer.json()["faults"]["drop_rate"] == 0.5
    bad = httpx.post(url, json={"error_rate": 2})
    assert bad.status_code == 422 and "error_rate" in bad.json()["message"]
    assert httpx.get(url).json()["faults"]["latency_ms"] == 20


# ---------------------------------------------------------------------------- errors and bad input

def test_business_errors_cross_the_wire_intact(sims, http):
    with pytest.raises(BusinessError) as err:
        http.housing.get_sale_contract("HZ-NO-SUCH-CONTRACT")
    assert err.value.code == "CONTRACT_UNKNOWN"
    assert "HZ-NO-SUCH-CONTRACT" in err.value.message and "不存在" in err.value.message
    assert err.value.detail == {"contract_no": "HZ-NO-SUCH-CONTRACT"}

    with pytest.raises(BusinessError) as err:
        http.tax.get("SH330106209901010001")
    assert (err.value.code, err.value.detail) == ("TAX_UNKNOWN", {"assessment_no": "SH330106209901010001"})

    with pytest.raises(BusinessError) as err:  # the department judges the unit number, as in-process
        http.housing.check_policy_housing("330106-not-a-unit")
    assert err.value.code == "UNIT_NUMBER_INVALID"
    assert sims.faults("housing").snapshot()["stats"]["ok"] == 2  # a "no" is an answer: not retried

    with pytest.raises(BusinessError) as err:  # a refusal of a mutating call, key and all
        http.notify.send(Notification(channel="sms", to="010-1234", text="您好"), "n:1")
    assert (err.value.code, err.value.detail) == ("NOTIFY_BAD_ADDRESS", {"channel": "sms", "to": "010-1234"})


def test_bad_input_gets_422_with_a_message(sims):
    tax, court, notify = sims.urls["tax"], sims.urls["court"], sims.urls["notify"]
    body = transfer("2026-X").model_dump(mode="json")
    with httpx.Client(headers={"Idempotency-Key": "k"}) as web:
        answer = web.post(f"{tax}/tax/assessments", json={**body, "price": "-1", "area": None})
        assert answer.status_code == 422
        assert answer.json()["code"] == "INVALID_REQUEST"
        assert answer.json()["message"] == (
            "TransferForTax: price: Input should be greater than 0; "
            "area: Decimal input should be an integer, float, string or Decimal object")
        assert [e["loc"] for e in answer.json()["detail"]["errors"]] == [["price"], ["area"]]

        answer = web.post(f"{tax}/tax/assessments", content=b"{not json")
        assert answer.status_code == 422 and answer.json()["message"].startswith("the body is not valid JSON")
        answer = web.post(f"{tax}/tax/assessments", json=body, headers={"Idempotency-Key": ""})
        assert answer.status_code == 422 and answer.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
        answer = web.get(f"{court}/court/orders", params={"limit": "lots"})
        assert answer.status_code == 422 and "'limit' must be a whole number" in answer.json()["message"]
        answer = web.get(f"{court}/court/seizures")
        assert answer.status_code == 422 and "'unit'" in answer.json()["message"]
        answer = web.post(f"{notify}/notify/messages", json={"channel": "fax", "to": "1", "text": "x"})
        assert answer.status_code == 422 and "channel: Input should be 'sms' or 'mail'" in answer.json()["message"]
        answer = web.get(f"{tax}/tax/nothing-here")
        assert answer.status_code == 404 and "code" not in answer.json()  # not a department's answer


# ---------------------------------------------------------------------------- every method over HTTP

def test_tax_round_trips(sims, http, clock):
    tax = sims.service("tax")
    case = f"2026-T-{uid()}"
    request = transfer(case)
    assessment = http.tax.assess(request, f"{case}:assess")
    assert assessment == tax.get(assessment.assessment_no)  # decimals and times survive the JSON
    assert assessment.total_payable > 0 and {line.item for line in assessment.lines} >= {"契税", "不动产登记费"}
    assert http.tax.assess(request, f"{case}:assess") == assessment  # the same key: the same assessment
    assert http.tax.get(assessment.assessment_no) == assessment
    paid = http.tax.pay(assessment.assessment_no, f"{case}:pay")
    assert (paid.status, paid.paid_at) == ("paid", clock.now())
    assert http.tax.get(assessment.assessment_no) == paid == tax.get(assessment.assessment_no)
    result = {"certificate_no": "浙(2026)杭州市不动产权第0000001号"}
    http.tax.receive_result(case, result, f"{case}:result")
    http.tax.receive_result(case, result, f"{case}:result")
    assert tax.results_for(case) == [result]


def test_housing_round_trips(sims, http):
    housing = sims.service("housing")
    unit, buyer = unit_number(), person("王五")
    contract = PresaleContract(
        contract_no=f"YS{uid()}", unit_number=unit, buyers=[buyer], price=Decimal("4200000"),
        area=Decimal("120.35"), developer=Party(name="杭州某某置业有限公司", id_type="统一社会信用代码",
                                                id_number="91330106MA2XXXXX0X"),
        presale_permit_no="杭售许字(2026)第000123号", signed_on=date(2026, 11, 20),
    )
    filing = http.housing.file_presale_contract(contract, f"{contract.contract_no}:file")
    assert filing == housing.get_filing(contract.contract_no)
    assert http.housing.file_presale_contract(contract, f"{contract.contract_no}:file") == filing

    allowed = http.housing.check_purchase_restriction([buyer], unit_number())
    assert (allowed.allowed, allowed.homes_owned, allowed.limit) == (True, 0, 2)
    housing.add_household_home([buyer], unit_number())
    housing.add_household_home([buyer], unit_number())
    refused = http.housing.check_purchase_restriction([buyer], unit)
    assert (refused.allowed, refused.homes_owned, refused.limit) == (False, 2, 2)
    assert refused == housing.check_purchase_restriction([buyer], unit) and "限购2套" in refused.reason

    policy_unit = unit_number()
    housing.add_policy_housing(policy_unit, "经济适用住房", date(2024, 3, 1), 5)  # listable from 2029
    check = http.housing.check_policy_housing(policy_unit)
    assert (check.policy_housing, check.kind, check.listing_allowed) == (True, "经济适用住房", False)
    assert http.housing.check_policy_housing(unit_number()).policy_housing is False

    sale = SaleContract(contract_no=f"WQ/{uid()}", unit_number=unit_number(), sellers=[person("赵六")],
                        buyers=[person("钱七")], price=Decimal("2980000.00"), area=Decimal("89.5"),
                        signed_on=date(2026, 11, 1), status="已网签")
    housing.add_sale_contract(sale)
    assert http.housing.get_sale_contract(sale.contract_no) == sale  # a '/' in the number stays in its segment

    case = f"2026-H-{uid()}"
    http.housing.receive_result(case, {"registered": True}, f"{case}:result")
    http.housing.receive_result(case, {"registered": True}, f"{case}:result")
    assert [r["result"] for r in housing.received(case)] == [{"registered": True}]


def test_court_round_trips(sims, http):
    court = sims.service("court")
    unit = unit_number()
    assert http.court.check_seizures(unit) == []
    before = http.court.fetch_orders(limit=1000)
    last = before[-1].order_id if before else None
    first = court.issue_order(kind="seizure", court="杭州市西湖区人民法院", document_no=f"(2026)浙0106执{uid()}号",
                              unit_number=unit, starts_on=date(2026, 11, 23), ends_on=date(2029, 11, 22))
    second = court.issue_order(kind="seizure", court="杭州市中级人民法院", document_no=f"(2026)浙01执{uid()}号",
                               unit_number=unit, starts_on=date(2026, 11, 23), ends_on=date(2029, 11, 22))
    orders = http.court.fetch_orders(last, limit=10)
    assert [o.order_id for o in orders] == [_order_id(first), _order_id(second)]
    assert all(isinstance(o, CourtOrder) for o in orders) and orders == court.fetch_orders(last, limit=10)
    assert http.court.fetch_orders(last, limit=1) == orders[:1]
    assert http.court.fetch_orders(orders[-1].order_id) == []
    seizures = http.court.check_seizures(unit)
    assert seizures == court.check_seizures(unit) and len(seizures) >= 1
    assert seizures[0].unit_number[:19] == unit[:19] and seizures[0].court == "杭州市西湖区人民法院"


def _order_id(issued: Any) -> str:
    return issued if isinstance(issued, str) else issued.order_id


def test_notify_round_trips(sims, http):
    notifier = sims.service("notify")
    case = f"2026-N-{uid()}"
    message = Notification(channel="sms", to="13800000000", text=f"【不动产登记】您的案件{case}已受理。",
                           case_number=case)
    http.notify.send(message, f"{case}:accepted")
    http.notify.send(message, f"{case}:accepted")  # the same key: accepted, not sent twice
    sent = notifier.sent(case_number=case)
    assert len(sent) == 1


# ---------------------------------------------------------------------------- configuration and the command

def test_the_factory_chooses_by_configuration(db):
    from adapters.tax.sandbox import SandboxTax

    assert isinstance(departments(db, env={}).tax, SandboxTax)
    with pytest.raises(AdapterConfigError, match="choose 'sandbox'"):
        departments(db, env={"ONEWINDOW_ADAPTERS": "soap"})
    with pytest.raises(AdapterConfigError) as err:
        departments(db, env={"ONEWINDOW_ADAPTERS": "http", "ONEWINDOW_TAX_URL": "http://127.0.0.1:8101",
                             "ONEWINDOW_COURT_URL": "127.0.0.1:8103"})
    message = str(err.value)
    assert "ONEWINDOW_HOUSING_URL (the base URL of the housing authority" in message
    assert "ONEWINDOW_NOTIFY_URL" in message and "'127.0.0.1:8103' is not an http://" in message
    assert "ONEWINDOW_TAX_URL" not in message


def test_http_settings_come_from_the_environment():
    env = {"ONEWINDOW_HTTP_READ_TIMEOUT": "7", "ONEWINDOW_TAX_HTTP_READ_TIMEOUT": "12.5",
           "ONEWINDOW_HTTP_ATTEMPTS": "5"}
    assert HttpSettings.from_env(env, "tax") == HttpSettings(read_timeout=12.5, attempts=5)
    assert HttpSettings.from_env(env, "court") == HttpSettings(read_timeout=7, attempts=5)
    assert HttpSettings.from_env({}) == HttpSettings(connect_timeout=2.0, read_timeout=4.0, attempts=3, backoff=0.25,
                                                     backoff_max=2.0, deadline=8.0)
    with pytest.raises(ValueError, match="ONEWINDOW_HTTP_ATTEMPTS='three' is not a whole number"):
        HttpSettings.from_env({"ONEWINDOW_HTTP_ATTEMPTS": "three"})
    with pytest.raises(ValueError, match="read_timeout must be positive"):
        HttpSettings.from_env({"ONEWINDOW_HTTP_READ_TIMEOUT": "0"})
    client = HttpTax("http://127.0.0.1:9", FAST)
    with pytest.raises(ValueError, match="pass an idempotency key"):
        client.pay("SH1", "")
    client.close()


def _free_ports(n: int) -> int:
    """A base port with n free ports after it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def test_the_simulators_command_serves_until_interrupted(tmp_path):
    base = _free_ports(4)
    env = {**os.environ, "ONEWINDOW_SIMULATOR_DATABASE_URL": f"sqlite:///{tmp_path}/sims.sqlite3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "simulators", "--base-port", str(base), "--latency-ms", "1",
         "--error-rate", "0.25", "--seed", "3"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("Press Ctrl+C"):
                break
        assert f"export ONEWINDOW_TAX_URL=http://127.0.0.1:{base}" in lines, lines
        assert f"export ONEWINDOW_NOTIFY_URL=http://127.0.0.1:{base + 3}" in lines
        assert "export ONEWINDOW_ADAPTERS=http" in lines
        state = httpx.get(f"http://127.0.0.1:{base + 2}/_faults").json()["faults"]
        assert (state["error_rate"], state["latency_ms"], state["seed"]) == (0.25, 1.0, 3)
        assert httpx.get(f"http://127.0.0.1:{base + 1}/_health").json()["department"] == "housing"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "simulators stopped" in out
