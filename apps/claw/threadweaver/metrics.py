"""Prometheus metrics of the console: requests, tokens, cost and latency per provider; hook and tool outcomes;
the gateway's requests and spend per client."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "threadweaver_provider_requests", "Requests to providers by outcome", ["provider", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            "threadweaver_tokens", "Tokens by provider and direction (in/out)", ["provider", "direction"],
            registry=self.registry,
        )  # fmt: skip
        self.cost = Counter("threadweaver_cost_usd", "Spend in USD by provider", ["provider"], registry=self.registry)
        self.latency = Histogram(
            "threadweaver_provider_latency_seconds", "Time from sending to the complete reply", ["provider"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.hooks = Counter(
            "threadweaver_hook_outcomes", "Hook runs by outcome (passed, modified, blocked, failed)",
            ["hook", "stage", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            "threadweaver_refused", "Messages refused before sending, by reason", ["reason"], registry=self.registry
        )
        self.tool_calls = Counter(
            "threadweaver_tool_calls", "Tool calls by outcome (ok, error, denied, unavailable)",
            ["server", "tool", "outcome"], registry=self.registry,
        )  # fmt: skip

        self.gateway_requests = Counter(
            "threadweaver_gateway_requests", "Gateway requests by client, provider and outcome",
            ["client", "provider", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.gateway_cost = Counter(
            "threadweaver_gateway_cost_usd", "Gateway spend in USD by client", ["client"], registry=self.registry
        )

    def gateway_request(self, client: str, provider: str, outcome: str, cost: float = 0.0) -> None:
        self.gateway_requests.labels(client, provider, outcome).inc()
        if cost:
            self.gateway_cost.labels(client).inc(cost)

    def hook_outcome(self, hook: str, stage: str, outcome: str) -> None:
        self.hooks.labels(hook, stage, outcome).inc()

    def tool_call(self, server: str, tool: str, outcome: str) -> None:
        self.tool_calls.labels(server, tool, outcome).inc()

    def reply(self, provider: str, tokens_in: int, tokens_out: int, cost: float, seconds: float) -> None:
        self.requests.labels(provider, "ok").inc()
        self.usage(provider, tokens_in, tokens_out, cost)
        self.latency.labels(provider).observe(seconds)

    def usage(self, provider: str, tokens_in: int, tokens_out: int, cost: float) -> None:
        self.tokens.labels(provider, "in").inc(tokens_in)
        self.tokens.labels(provider, "out").inc(tokens_out)
        self.cost.labels(provider).inc(cost)

    def failure(self, provider: str, code: str) -> None:
        self.requests.labels(provider, code).inc()
