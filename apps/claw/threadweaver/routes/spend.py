"""``GET /spend``: what was spent, per provider, thread and gateway client, with the caps in force (a gateway
client's from ``gateway.limits_file`` when that overrides them: ``client_limits``, ``limits_file``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claw.threadweaver.routes.deps import LOGGED_IN, GatewayDep, GovernanceDep, LedgerDep

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/spend")
def spend(ledger: LedgerDep, governance: GovernanceDep, gateway: GatewayDep) -> dict[str, Any]:
    gateway.refresh_limits_blocking()  # a worker thread (a plain def route): the caps shown are those in force
    summary = ledger.spend_summary()
    summary["caps"] = {
        name: {"cap_usd": cap, "spent_usd": ledger.spend(provider=name)}
        for name, cap in governance.provider_caps.items()
    }
    summary["clients"] = ledger.client_spend(gateway.caps(), gateway.token_caps())
    summary["client_limits"] = gateway.limits()
    if gateway.overlay is not None:
        summary["limits_file"] = {"path": str(gateway.overlay.path), "problem": gateway.overlay.problem}
    return summary
