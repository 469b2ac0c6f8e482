"""The housing authority over HTTP: `HttpHousing` implements `HousingAuthority` against these endpoints.

JSON bodies are the models of `adapters.housing` as `model_dump(mode="json")`. Mutating calls
carry an `Idempotency-Key` header. Errors: see `adapters.http_base` (a department's "no" is HTTP
409 `{"code", "message", "detail"}`; bad input 422 with code `INVALID_REQUEST`).

| method | path                                   | body              | answer                 | key |
|--------|----------------------------------------|-------------------|------------------------|-----|
| POST   | /housing/presale-filings               | PresaleContract   | 200 ContractFiling     | yes |
| POST   | /housing/purchase-restriction-checks   | RestrictionQuery  | 200 RestrictionCheck   | no (a query) |
| GET    | /housing/policy-housing/{unit_number}  |                   | 200 PolicyHousingCheck |     |
| GET    | /housing/sale-contracts/{contract_no}  |                   | 200 SaleContract       |     |
| POST   | /housing/results                       | ResultNotice      | 204                    | yes |

The restriction check is a POST because it sends the buyers' identity numbers, which do not
belong in a URL (access logs). Error codes that cross the wire include CONTRACT_UNKNOWN.
"""
from __future__ import annotations

from typing import Any

from adapters.common import Model, Party
from adapters.housing import ContractFiling, PolicyHousingCheck, PresaleContract, RestrictionCheck, SaleContract
from adapters.http_base import HttpClient, HttpSettings, ResultNotice, segment


class RestrictionQuery(Model):
    """Body of POST /housing/purchase-restriction-checks.

    No stricter than the Protocol's signature: judging the unit number or an empty list of buyers
    is the department's business (UNIT_NUMBER_INVALID, BUYERS_MISSING), the same in-process and
    over HTTP.
    """

    buyers: list[Party]
    unit_number: str


class HttpHousing:
    """`HousingAuthority` over HTTP (see the module docstring for the API)."""

    def __init__(self, base_url: str, settings: HttpSettings | None = None, **client: Any) -> None:
        client.setdefault("url_setting", "ONEWINDOW_HOUSING_URL")
        self.http = HttpClient("housing authority", base_url, settings, **client)

    def file_presale_contract(self, contract: PresaleContract, idempotency_key: str) -> ContractFiling:
        return self.http.call("POST", "/housing/presale-filings", body=contract, idempotency_key=idempotency_key,
                              expect=ContractFiling)

    def check_purchase_restriction(self, buyers: list[Party], unit_number: str) -> RestrictionCheck:
        query = RestrictionQuery(buyers=buyers, unit_number=unit_number)
        return self.http.call("POST", "/housing/purchase-restriction-checks", body=query, mutating=False,
                              expect=RestrictionCheck)

    def check_policy_housing(self, unit_number: str) -> PolicyHousingCheck:
        return self.http.call("GET", f"/housing/policy-housing/{segment(unit_number)}", expect=PolicyHousingCheck)

    def get_sale_contract(self, contract_no: str) -> SaleContract:
        return self.http.call("GET", f"/housing/sale-contracts/{segment(contract_no)}", expect=SaleContract)

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        self.http.call("POST", "/housing/results", body=ResultNotice(case_number=case_number, result=result),
                       idempotency_key=idempotency_key)

    def close(self) -> None:
        self.http.close()
