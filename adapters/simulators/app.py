"""One Flask app per department, serving a department implementation (a sandbox) over the HTTP API.

The API is the one the HTTP clients speak, documented in `adapters/<department>/http.py`.
Answers:
- 200 with the model as `model_dump(mode="json")`, or 204 for results and notifications;
- 422 `{"code": "INVALID_REQUEST", "message": "price: Input should be greater than 0", "detail":
  {"errors": [...]}}` when the body is not JSON, fails the pydantic model, or a query parameter is
  wrong; 422 `IDEMPOTENCY_KEY_REQUIRED` when a mutating call has no `Idempotency-Key` header;
- 409 `{"code", "message", "detail"}` when the department says no (`BusinessError`: the code is
  the sandbox's, e.g. CONTRACT_UNKNOWN, TAX_UNKNOWN). 409 for every business answer, unknown
  numbers included: a 404 is kept for "no such endpoint", which a client must not mistake for a
  department's answer;
- 404/405 `{"error", "message"}` (no `code`) for a path or method the API does not have;
- 503 `SIMULATED_UNAVAILABLE` for an injected fault, 503 `UNAVAILABLE` when the implementation
  raises `TransientError`, 500 `INTERNAL_ERROR` for anything else.

The simulator checks the shape of a request (the Protocol's models, required parameters and
headers); what the values mean (a malformed unit number, an unknown contract) is the
implementation's to judge, so a case sees the same `BusinessError` in-process and over HTTP.
The implementation is idempotent by key itself; the simulator passes the header's key through.
Faults (`adapters.simulators.faults`) wrap every department route.
"""
from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from adapters.court.http import MAX_ORDERS, OrderList, SeizureList
from adapters.housing import PresaleContract
from adapters.housing.http import RestrictionQuery
from adapters.http_base import IDEMPOTENCY_HEADER, ResultNotice, readable_errors
from adapters.notify import Notification
from adapters.simulators.faults import FaultConfig, FaultInjector
from adapters.tax import TransferForTax
from domain.errors import BusinessError, TransientError

log = logging.getLogger("adapters.simulators")

DEPARTMENTS = ("tax", "housing", "court", "notify")
M = TypeVar("M", bound=BaseModel)


class InvalidRequest(Exception):
    def __init__(self, message: str, code: str = "INVALID_REQUEST", **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


# ---------------------------------------------------------------------------- request helpers

def body(model: type[M]) -> M:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidRequest(f"{request.method} {request.path} needs a JSON body ({model.__name__})")
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise InvalidRequest(f"the body is not valid JSON: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
                  for e in err.errors()]
        raise InvalidRequest(f"{model.__name__}: {readable_errors(err)}", errors=errors) from None


def key() -> str:
    value = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not value:
        raise InvalidRequest(f"{request.method} {request.path} changes data: the {IDEMPOTENCY_HEADER} header "
                             "is required", code="IDEMPOTENCY_KEY_REQUIRED")
    if len(value) > 200:
        raise InvalidRequest(f"the {IDEMPOTENCY_HEADER} header is longer than 200 characters",
                             code="IDEMPOTENCY_KEY_REQUIRED")
    return value


def dump(model: BaseModel) -> Response:
    return jsonify(model.model_dump(mode="json"))


def no_content() -> Response:
    return Response(status=204)


def _jsonable(value: Any) -> Any:
    """A BusinessError's detail as JSON (decimals and dates as strings, models dumped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _error(status: int, code: str | None, message: str, detail: dict[str, Any] | None = None) -> Response:
    payload: dict[str, Any] = {"code": code, "message": message, "detail": _jsonable(detail or {})}
    if code is None:  # not a department answer (no such endpoint): no code, so no client takes it for one
        payload = {"error": "not_found" if status == 404 else "http_error", "message": message}
    response = jsonify(payload)
    response.status_code = status
    return response


# ---------------------------------------------------------------------------- the departments' routes

def _tax_routes(bp: Blueprint, service: Any) -> None:
    @bp.post("/tax/assessments")
    def assess() -> Response:
        k = key()
        return dump(service.assess(body(TransferForTax), k))

    @bp.get("/tax/assessments/<path:assessment_no>")
    def get_assessment(assessment_no: str) -> Response:
        return dump(service.get(assessment_no))

    @bp.post("/tax/assessments/<path:assessment_no>/payment")
    def pay(assessment_no: str) -> Response:
        return dump(service.pay(assessment_no, key()))

    @bp.post("/tax/results")
    def tax_result() -> Response:
        k = key()
        notice = body(ResultNotice)
        service.receive_result(notice.case_number, notice.result, k)
        return no_content()


def _housing_routes(bp: Blueprint, service: Any) -> None:
    @bp.post("/housing/presale-filings")
    def file_presale() -> Response:
        k = key()
        return dump(service.file_presale_contract(body(PresaleContract), k))

    @bp.post("/housing/purchase-restriction-checks")
    def restriction() -> Response:
        query = body(RestrictionQuery)
        return dump(service.check_purchase_restriction(query.buyers, query.unit_number))

    @bp.get("/housing/policy-housing/<path:unit_number>")
    def policy_housing(unit_number: str) -> Response:
        return dump(service.check_policy_housing(unit_number))

    @bp.get("/housing/sale-contracts/<path:contract_no>")
    def sale_contract(contract_no: str) -> Response:
        return dump(service.get_sale_contract(contract_no))

    @bp.post("/housing/results")
    def housing_result() -> Response:
        k = key()
        notice = body(ResultNotice)
        service.receive_result(notice.case_number, notice.result, k)
        return no_content()


def _court_routes(bp: Blueprint, service: Any) -> None:
    @bp.get("/court/seizures")
    def seizures() -> Response:
        unit = request.args.get("unit", "").strip()
        if not unit:
            raise InvalidRequest("query parameter 'unit' (the unit number) is required")
        return dump(SeizureList(seizures=service.check_seizures(unit)))

    @bp.get("/court/orders")
    def orders() -> Response:
        raw = request.args.get("limit", "100")
        try:
            limit = int(raw)
        except ValueError:
            raise InvalidRequest(f"query parameter 'limit' must be a whole number, not {raw!r}") from None
        if not 1 <= limit <= MAX_ORDERS:
            raise InvalidRequest(f"query parameter 'limit' must be between 1 and {MAX_ORDERS}, not {limit}")
        after = request.args.get("after") or None
        return dump(OrderList(orders=service.fetch_orders(after, limit)))


def _notify_routes(bp: Blueprint, service: Any) -> None:
    @bp.post("/notify/messages")
    def send() -> Response:
        k = key()
        service.send(body(Notification), k)
        return no_content()


ROUTES: dict[str, Callable[[Blueprint, Any], None]] = {
    "tax": _tax_routes, "housing": _housing_routes, "court": _court_routes, "notify": _notify_routes,
}


# ---------------------------------------------------------------------------- the app

def create_app(department: str, service: Any, faults: FaultConfig | FaultInjector | None = None) -> Flask:
    """A Flask app serving `service` (an implementation of the department's Protocol) with faults."""
    if department not in ROUTES:
        raise ValueError(f"unknown department {department!r}; choose one of {', '.join(DEPARTMENTS)}")
    injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
    app = Flask(f"onewindow-simulator-{department}")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["simulator"] = {"department": department, "service": service, "faults": injector}

    bp = Blueprint(department, __name__)
    ROUTES[department](bp, service)

    @bp.before_request
    def inject_fault() -> Response | None:
        outcome, latency = injector.draw()
        injector.sleep(latency)
        if outcome == "error":
            return _error(503, "SIMULATED_UNAVAILABLE",
                          f"simulated fault: the {department} service is unavailable")
        if outcome == "timeout":
            injector.sleep(injector.config.timeout_s)
            return _error(504, "SIMULATED_TIMEOUT", f"simulated fault: the {department} service hung")
        g.drop = outcome == "drop"
        return None

    @bp.after_request
    def drop_answer(response: Response) -> Response:
        if not g.get("drop"):
            return response
        log.info("simulated fault: %s %s done, answer dropped", request.method, request.path)
        sock = request.environ.get("werkzeug.socket")
        if injector.config.drop_mode == "close" and sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # writing the answer then fails quietly: connection dropped
            except OSError:
                pass
            return response
        return Response(status=502)

    app.register_blueprint(bp)

    @app.get("/_health")
    def health() -> Response:
        return jsonify({"department": department, "status": "up"})

    @app.get("/_faults")
    def get_faults() -> Response:
        return jsonify(injector.snapshot())

    @app.post("/_faults")
    def set_faults() -> Response:
        try:
            changes = json.loads(request.get_data() or b"{}")
        except ValueError as err:
            raise InvalidRequest(f"the body is not valid JSON: {err}") from None
        if not isinstance(changes, dict):
            raise InvalidRequest("the body must be a JSON object of fault settings")
        try:
            injector.update(changes)
        except ValidationError as err:
            raise InvalidRequest(f"fault settings: {readable_errors(err)}") from None
        log.info("%s simulator faults now %s", department, injector.snapshot()["faults"])
        return jsonify(injector.snapshot())

    @app.errorhandler(InvalidRequest)
    def invalid(err: InvalidRequest) -> Response:
        return _error(422, err.code, err.message, err.detail)

    @app.errorhandler(BusinessError)
    def refused(err: BusinessError) -> Response:
        return _error(409, err.code, err.message, err.detail)

    @app.errorhandler(TransientError)
    def unavailable(err: TransientError) -> Response:
        return _error(503, "UNAVAILABLE", str(err))

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        message = f"{request.method} {request.path}: {err.description}"
        if status >= 500:
            return _error(status, "INTERNAL_ERROR", message)
        return _error(status, None, message)

    @app.errorhandler(Exception)
    def crashed(err: Exception) -> Response:
        current_app.logger.exception("%s simulator: %s %s failed", department, request.method, request.path)
        return _error(500, "INTERNAL_ERROR", f"{type(err).__name__}: {err}")

    return app


def faults_of(app: Flask) -> FaultInjector:
    return app.extensions["simulator"]["faults"]
