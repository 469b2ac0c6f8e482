"""Housing-authority operators: contract filing, purchase restriction, policy housing, contracts."""
from __future__ import annotations

from typing import Any

from adapters.common import Party
from adapters.housing import PresaleContract
from handlers.departments import departments, dump, parse
from handlers.registry import REGISTRY, Param


@REGISTRY.register("housing.file_presale_contract", [Param("contract", "dict")])
def file_presale_contract(ctx: Any, contract: dict[str, Any]) -> dict[str, Any]:
    """预售合同备案."""
    request = parse(PresaleContract, contract, "预售合同")
    return dump(departments(ctx).housing.file_presale_contract(request, ctx.idempotency_key))


@REGISTRY.register("housing.check_purchase_restriction", [Param("buyers", "list"), Param("unit_number", "str")])
def check_purchase_restriction(ctx: Any, buyers: list[dict[str, Any]], unit_number: str) -> dict[str, Any]:
    """限购核查: the result says allowed or not, with the reason, for the diagram to route on."""
    parties = [parse(Party, b, "购房人") for b in buyers]
    return dump(departments(ctx).housing.check_purchase_restriction(parties, unit_number))


@REGISTRY.register("housing.check_policy_housing", [Param("unit_number", "str")])
def check_policy_housing(ctx: Any, unit_number: str) -> dict[str, Any]:
    """政策性住房上市核查."""
    return dump(departments(ctx).housing.check_policy_housing(unit_number))


@REGISTRY.register("housing.get_sale_contract", [Param("contract_no", "str")])
def get_sale_contract(ctx: Any, contract_no: str) -> dict[str, Any]:
    """网签合同信息 (shared, so the applicant need not bring the contract)."""
    return dump(departments(ctx).housing.get_sale_contract(contract_no))
