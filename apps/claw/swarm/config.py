"""The supervisor's settings: a YAML file validated by pydantic, and the worst-case restart deadline it implies.

The deadline is what the issue promises ("a hung worker is restarted in <= 60 s"): from the moment a worker stops
answering, the supervisor needs at most ``hung_after`` probe periods to call it hung, one probe to finish, the
journal read and the restart. :attr:`SwarmSettings.restart_deadline_s` computes it and the model refuses settings
whose deadline exceeds :data:`MAX_RESTART_DEADLINE_S`.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from claw.exporters.serving import parse_listen
from claw.leds.protocol import describe_errors

MAX_RESTART_DEADLINE_S = 60.0
# The one template every worker is an instance of (roles/swarm): the only units the supervisor agent may touch.
WORKER_UNIT = "openclaw-worker@{name}.service"
# systemd's unit-name alphabet without '\' escapes and no leading '-' (never read as an option); services only.
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_:@][A-Za-z0-9_:.@-]{0,246}\.service$")]
# Also the LED signal source suffix (swarm:<name>) and a Prometheus label value: short and plain.
WorkerName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")]
Seconds = Annotated[float, Field(gt=0, le=86400)]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnSettings(Model):
    """A synthetic turn: a cheap request the worker must answer (2xx, and ``expect`` in the body when set)."""

    url: HttpUrl
    method: Literal["GET", "POST"] = "POST"
    body: dict[str, Any] | None = Field(None, description="JSON body for POST")
    every: Seconds = Field(300.0, description="seconds between successful turns; a failed one is retried each probe")
    timeout: Seconds = Field(5.0, le=60)
    expect: str | None = Field(None, max_length=200, description="text the answer must contain")


class WorkerSettings(Model):
    name: WorkerName
    unit: UnitName
    health_url: HttpUrl = Field(
        description="GET must answer 2xx within probe_timeout, e.g. http://127.0.0.1:18801/healthz"
    )
    turn: TurnSettings | None = None


class BackoffSettings(Model):
    """Delay before the n-th restart within the crash-loop window: 0, then initial, initial*factor, ... <= max."""

    initial: Seconds = 5.0
    factor: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0
    max: Seconds = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSettings:
        if self.max < self.initial:
            raise ValueError(f"backoff max ({self.max:g} s) is below initial ({self.initial:g} s)")
        return self


class CrashLoopSettings(Model):
    """``restarts`` restarts within ``window`` seconds: a crash loop; the supervisor stops restarting that worker."""

    restarts: Annotated[int, Field(ge=2, le=100)] = 5
    window: Seconds = 600.0


class StoreSettings(Model):
    path: Path = Path("/var/lib/claw-swarm/incidents.db")
    max_incidents: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000
    max_age_days: Annotated[float, Field(gt=0, le=3650)] = 90.0


class SwarmSettings(Model):
    """What the supervisor watches and how (the YAML file given with ``--config``)."""

    workers: list[WorkerSettings] = Field(min_length=1)
    probe_interval: Annotated[float, Field(gt=0, le=60)] = 5.0
    probe_timeout: Annotated[float, Field(gt=0, le=30)] = 2.0
    hung_after: Annotated[int, Field(ge=1, le=20)] = 3
    start_grace: Annotated[float, Field(ge=0, le=600)] = 15.0
    restart_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    backoff: BackoffSettings = BackoffSettings()
    crash_loop: CrashLoopSettings = CrashLoopSettings()
    store: StoreSettings = StoreSettings()
    log_lines: Annotated[int, Field(ge=0, le=200)] = 20
    listen: str | None = Field(None, description="HOST:PORT for /metrics; none serves no metrics")
    led_socket: Path | None = Field(None, description="the LED daemon's socket; none sends no LED alert")
    alert_hold: Annotated[float, Field(gt=0, le=86400)] = 600.0
    console_notify_url: HttpUrl | None = Field(None, description="POST each incident as JSON here (a hook)")
    console_notify_key_file: Path | None = Field(
        None, description="a key sent as 'Authorization: Bearer' (ThreadWeaver's /notifications: a gateway client's)"
    )
    console_notify_ca_file: Path | None = Field(
        None, description="CA certificate for an https console_notify_url (ThreadWeaver's own); none: the system's"
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_listen(value)
            except ArgumentTypeError as err:
                raise ValueError(str(err)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SwarmSettings:
        names = [w.name for w in self.workers]
        units = [w.unit for w in self.workers]
        for what, values in (("name", names), ("unit", units)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"each worker needs its own {what}; given more than once: {', '.join(twice)}")
        if self.restart_deadline_s > MAX_RESTART_DEADLINE_S:
            raise ValueError(
                f"a hung worker could wait {self.restart_deadline_s:g} s for its restart (hung_after x probe period "
                f"+ one probe + journal read + restart_timeout); the limit is {MAX_RESTART_DEADLINE_S:g} s: "
                "lower probe_interval, probe_timeout, hung_after, restart_timeout or a turn's timeout"
            )
        return self

    def worker(self, given: str) -> WorkerSettings:
        """The declared worker ``given`` names: exactly its name or exactly its unit, compared as whole strings
        (nothing is parsed, so no other unit, template, path or second name can slip through); ValueError else."""
        for worker in self.workers:
            if given in (worker.name, worker.unit):
                return worker
        names = ", ".join(w.name for w in self.workers)
        raise ValueError(
            f"{given[:80]!r} is not a declared worker; give one of {names} (or its unit "
            f"{WORKER_UNIT.format(name='<name>')}); no other unit can be inspected or restarted here"
        )

    def probe_budget_s(self, worker: WorkerSettings) -> float:
        """The longest one probe of ``worker`` can take: liveness and readiness together, then its turn."""
        return self.probe_timeout + (worker.turn.timeout if worker.turn else 0.0)

    @property
    def restart_deadline_s(self) -> float:
        """Worst case from a worker hanging to its restart returning, over all workers."""
        return max(
            self.hung_after * max(self.probe_interval, budget) + budget + self.probe_timeout + self.restart_timeout
            for budget in (self.probe_budget_s(w) for w in self.workers)
        )


def load(path: Path) -> SwarmSettings:
    """The settings in a YAML file; ValueError with a one-line reason when unreadable or invalid."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return parse(raw)


def parse(raw: dict[str, Any]) -> SwarmSettings:
    try:
        return SwarmSettings.model_validate(raw)
    except ValidationError as err:
        raise ValueError(describe_errors(err)) from None
