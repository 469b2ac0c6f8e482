"""The tax authority over HTTP: `HttpTax` implements `TaxAuthority` against these endpoints.

JSON bodies are the models of `adapters.tax` as `model_dump(mode="json")` (decimals as strings,
dates ISO 8601). Mutating calls carry an `Idempotency-Key` header; the same key gets the same
answer and never does the work twice. Errors: see `adapters.http_base` (a department's "no" is
HTTP 409 `{"code", "message", "detail"}`; bad input 422 with code `INVALID_REQUEST`).

| method | path                                  | body             | answer             | key |
|--------|---------------------------------------|------------------|--------------------|-----|
| POST   | /tax/assessments                      | TransferForTax   | 200 TaxAssessment  | yes |
| GET    | /tax/assessments/{assessment_no}      |                  | 200 TaxAssessment  |     |
| POST   | /tax/assessments/{assessment_no}/payment |               | 200 TaxAssessment  | yes |
| POST   | /tax/results                          | ResultNotice     | 204                | yes |

Error codes that cross the wire include TAX_UNKNOWN (unknown assessment number).
"""
from __future__ import annotations

from typing import Any

from adapters.http_base import HttpClient, HttpSettings, ResultNotice, segment
from adapters.tax import TaxAssessment, TransferForTax


class HttpTax:
    """`TaxAuthority` over HTTP (see the module docstring for the API)."""

    def __init__(self, base_url: str, settings: HttpSettings | None = None, **client: Any) -> None:
        client.setdefault("url_setting", "ONEWINDOW_TAX_URL")
        self.http = HttpClient("tax authority", base_url, settings, **client)

    def assess(self, request: TransferForTax, idempotency_key: str) -> TaxAssessment:
        return self.http.call("POST", "/tax/assessments", body=request, idempotency_key=idempotency_key,
                              expect=TaxAssessment)

    def get(self, assessment_no: str) -> TaxAssessment:
        return self.http.call("GET", f"/tax/assessments/{segment(assessment_no)}", expect=TaxAssessment)

    def pay(self, assessment_no: str, idempotency_key: str) -> TaxAssessment:
        return self.http.call("POST", f"/tax/assessments/{segment(assessment_no)}/payment",
                              idempotency_key=idempotency_key, expect=TaxAssessment)

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        self.http.call("POST", "/tax/results", body=ResultNotice(case_number=case_number, result=result),
                       idempotency_key=idempotency_key)

    def close(self) -> None:
        self.http.close()
