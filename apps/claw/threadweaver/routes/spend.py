"""``GET /spend``: what was spent, per provider, thread and gateway client, with the caps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claw.threadweaver.routes.deps import LOGGED_IN, GatewayDep, GovernanceDep, LedgerDep

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/spend")
def spend(ledger: LedgerDep, governance: GovernanceDep, gateway: GatewayDep) -> dict[str, Any]:
    summary = ledger.spend_summary()
    summary["caps"] = {
        name: {"cap_usd": cap, "spent_usd": ledger.spend(provider=name)}
        for name, cap in governance.provider_caps.items()
    }
    summary["clients"] = ledger.client_spend(gateway.caps(), gateway.token_caps())
    return summary
