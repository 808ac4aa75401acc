"""Scenario files for the branch simulator (simulation.py): what a branch is like, parsed and
checked. The fields are those of ../shared/scenarios/README.md plus this project's (docs:
design/wait-estimates.md, "The branch simulator"): a service's `long_visits` and
`configured_minutes`, `handover_minutes`, and `remote` (customers who join from home). A bad
field is a ScenarioError whose message names it."""
import json
import math
import random
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ScenarioError(ValueError):
    """The scenario file is not usable; the message says which field and why."""


@dataclass(frozen=True)
class ServiceSpec:
    code: str
    name: str
    mean_minutes: float
    cv: float
    distribution: str
    walk_in_share: float
    appointment_share: float
    # Optional rare long visits: (share, mean minutes, cv), lognormal; None for none. The extra
    # draw happens only when set, so scenarios without it draw exactly as before.
    long_visits: tuple[float, float, float] | None = None
    # What the branch has configured as the service's minutes (the estimator's prior while it has
    # no history); None: the true mean. A wrong setting is how a branch starts in the real world.
    configured_minutes: float | None = None

    @property
    def overall_mean_minutes(self) -> float:
        if self.long_visits is None:
            return self.mean_minutes
        share, mean, _ = self.long_visits
        return (1 - share) * self.mean_minutes + share * mean

    def draw(self, rng: random.Random) -> float:
        if self.long_visits is not None and rng.random() < self.long_visits[0]:
            return _lognormal(rng, self.long_visits[1], self.long_visits[2])
        if self.distribution == "exponential":
            return rng.expovariate(1 / self.mean_minutes)
        return _lognormal(rng, self.mean_minutes, self.cv)


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    sigma = math.sqrt(math.log(1 + cv ** 2))
    return rng.lognormvariate(math.log(mean) - sigma ** 2 / 2, sigma)


@dataclass(frozen=True)
class CounterSpec:
    name: str
    services: list[str]
    shifts: list[tuple[time, time]]


@dataclass(frozen=True)
class RemoteSpec:
    """Customers who join the queue from home (tickets/remote.py) instead of walking in: `share` of
    the walk-in arrivals, each with a trip drawn evenly from `travel_minutes` (whole minutes); told
    to set off, they arrive after the trip plus a normal lateness (their trip guess is a guess), or
    never (`no_come_rate`). `set_off_margin_minutes`: the branch's setting."""

    share: float
    travel_minutes: tuple[int, int]
    lateness: tuple[float, float]  # mean, sd, minutes
    no_come_rate: float = 0.0
    set_off_margin_minutes: int = 5

    def draw_travel(self, rng: random.Random) -> int:
        return rng.randint(*self.travel_minutes)


@dataclass(frozen=True)
class Scenario:
    name: str
    timezone: str
    start_date: date
    days: int
    weekdays_only: bool
    open: time
    close: time
    walk_in_cutoff_minutes: int
    services: list[ServiceSpec]
    walk_in_rates: list[tuple[time, float]]
    appointments_per_30_minutes: int
    no_show_rate: float
    arrival_offset: tuple[float, float]  # normal mean, sd (minutes; arrival minus booked start)
    counters: list[CounterSpec]
    patience_mean: float | None  # exponential; None: nobody gives up
    seed: int
    # Minutes a counter spends after each visit before it calls the next (paperwork), which the
    # product's visit lengths (call to finish) do not show: a model error only calibration sees.
    handover_minutes: float = 0.0
    remote: "RemoteSpec | None" = None  # some walk-ins join from home instead

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_days(self, days: int | None = None) -> list[date]:
        wanted, day, result = days or self.days, self.start_date, []
        while len(result) < wanted:
            if not self.weekdays_only or day.weekday() < 5:
                result.append(day)
            day += timedelta(days=1)
        return result

    def days_before(self, days: int) -> list[date]:
        """The `days` open days just before the start, oldest first."""
        day, result = self.start_date, []
        while len(result) < days:
            day -= timedelta(days=1)
            if not self.weekdays_only or day.weekday() < 5:
                result.append(day)
        return result[::-1]

    def mean_service_minutes(self) -> float:
        """Mean visit length over the walk-in mix (the naive rule's figure)."""
        total = sum(s.walk_in_share for s in self.services) or 1
        return sum(s.overall_mean_minutes * s.walk_in_share for s in self.services) / total


def _field(data: dict, name: str, kind, where: str = ""):
    if name not in data:
        raise ScenarioError(f"{where}{name}: missing")
    value = data[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ScenarioError(f"{where}{name}: expected {kind.__name__}, got {value!r}")
    return value


def _clock(value, where: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: expected a local time like 09:00, got {value!r}") from None


def _long_visits(raw: dict, where: str) -> tuple[float, float, float] | None:
    """`long_visits: {"share", "mean_minutes", "cv"}`: a share of visits drawn from a second,
    longer lognormal (a mixture with rare very long visits)."""
    spec = raw.get("long_visits")
    if spec is None:
        return None
    where += "long_visits."
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where[:-1]}: expected an object with share, mean_minutes, cv, got {spec!r}")
    share, mean = _field(spec, "share", float, where), _field(spec, "mean_minutes", float, where)
    cv = _field(spec, "cv", float, where) if "cv" in spec else 1.0
    if not 0 < share < 1:
        raise ScenarioError(f"{where}share: must be between 0 and 1 (exclusive), got {share}")
    if mean <= 0:
        raise ScenarioError(f"{where}mean_minutes: must be positive")
    if cv <= 0:
        raise ScenarioError(f"{where}cv: must be positive")
    return share, mean, cv


def _positive(raw: dict, name: str, where: str, zero: bool = False) -> float | None:
    """An optional number above 0 (or at least 0 with `zero`); None when absent."""
    if raw.get(name) is None:
        return None
    value = _field(raw, name, float, where)
    if value < 0 or (value == 0 and not zero):
        raise ScenarioError(f"{where}{name}: must be {'at least 0' if zero else 'positive'}, got {value}")
    return value


def _remote(data: dict) -> RemoteSpec | None:
    spec = data.get("remote")
    if spec is None:
        return None
    where = "remote."
    if not isinstance(spec, dict):
        raise ScenarioError(f"remote: expected an object with share and travel_minutes, got {spec!r}")
    share = _field(spec, "share", float, where)
    if not 0 < share <= 1:
        raise ScenarioError(f"{where}share: must be above 0 and at most 1, got {share}")
    travel = _field(spec, "travel_minutes", list, where)
    if (len(travel) != 2 or not all(isinstance(t, int) and not isinstance(t, bool) for t in travel)
            or not 0 <= travel[0] <= travel[1] <= 120):
        raise ScenarioError(f"{where}travel_minutes: [shortest, longest] whole minutes within 0-120, got {travel!r}")
    lateness = spec.get("lateness_minutes") or {"mean": 0, "sd": 0}
    if not isinstance(lateness, dict):
        raise ScenarioError(f"{where}lateness_minutes: expected an object with mean and sd, got {lateness!r}")
    mean = _field(lateness, "mean", float, where + "lateness_minutes.") if "mean" in lateness else 0.0
    sd = _positive(lateness, "sd", where + "lateness_minutes.", zero=True) or 0.0
    no_come = _positive(spec, "no_come_rate", where, zero=True) or 0.0
    if no_come >= 1:
        raise ScenarioError(f"{where}no_come_rate: must be below 1, got {no_come}")
    margin = spec.get("set_off_margin_minutes", 5)
    if not isinstance(margin, int) or isinstance(margin, bool) or not 0 <= margin <= 60:
        raise ScenarioError(f"{where}set_off_margin_minutes: whole minutes from 0 to 60, got {margin!r}")
    return RemoteSpec(share, (travel[0], travel[1]), (mean, sd), no_come, margin)


def parse_scenario(data: dict) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("the scenario must be a JSON object")
    zone = _field(data, "timezone", str)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(f"timezone: unknown IANA zone {zone!r}") from None
    try:
        start = date.fromisoformat(_field(data, "start_date", str))
    except ValueError:
        raise ScenarioError("start_date: expected an ISO date like 2026-03-02") from None
    services = []
    for i, raw in enumerate(_field(data, "services", list)):
        where = f"services[{i}]."
        distribution = _field(raw, "distribution", str, where)
        if distribution not in ("lognormal", "exponential"):
            raise ScenarioError(f"{where}distribution: lognormal or exponential, got {distribution!r}")
        mean = _field(raw, "mean_minutes", float, where)
        if mean <= 0:
            raise ScenarioError(f"{where}mean_minutes: must be positive")
        services.append(ServiceSpec(
            _field(raw, "code", str, where), raw.get("name") or raw["code"], mean,
            float(raw.get("cv", 1.0)), distribution, float(raw.get("walk_in_share", 0)),
            float(raw.get("appointment_share", 0)), _long_visits(raw, where),
            _positive(raw, "configured_minutes", where),
        ))
    if not services:
        raise ScenarioError("services: at least one is needed")
    codes = {s.code for s in services}
    counters = []
    for i, raw in enumerate(_field(data, "counters", list)):
        where = f"counters[{i}]."
        serves = _field(raw, "services", list, where)
        unknown = set(serves) - codes
        if unknown:
            raise ScenarioError(f"{where}services: unknown service {sorted(unknown)}")
        shifts = [(_clock(a, where + "shifts"), _clock(b, where + "shifts")) for a, b in _field(raw, "shifts", list, where)]
        counters.append(CounterSpec(str(_field(raw, "name", str, where)), serves, shifts))
    rates = [(_clock(at, "walk_in_rate_per_hour"), float(rate)) for at, rate in _field(data, "walk_in_rate_per_hour", list)]
    appointments = data.get("appointments") or {}
    offset = appointments.get("arrival_offset_minutes") or {"mean": 0, "sd": 0}
    patience = data.get("patience_minutes")
    if patience is not None and patience.get("distribution") != "exponential":
        raise ScenarioError("patience_minutes.distribution: only exponential is supported")
    days = _field(data, "days", int)
    if days < 1:
        raise ScenarioError("days: at least 1")
    return Scenario(
        name=str(data.get("name", "scenario")), timezone=zone, start_date=start, days=days,
        weekdays_only=bool(data.get("weekdays_only", False)),
        open=_clock(_field(data, "open", str), "open"), close=_clock(_field(data, "close", str), "close"),
        walk_in_cutoff_minutes=int(data.get("walk_in_cutoff_minutes", 0)), services=services,
        walk_in_rates=sorted(rates), appointments_per_30_minutes=int(appointments.get("per_30_minutes", 0)),
        no_show_rate=float(appointments.get("no_show_rate", 0)),
        arrival_offset=(float(offset.get("mean", 0)), float(offset.get("sd", 0))),
        counters=counters, patience_mean=float(patience["mean"]) if patience else None,
        seed=int(data.get("seed", 0)), handover_minutes=_positive(data, "handover_minutes", "", zero=True) or 0.0,
        remote=_remote(data),
    )


def load_scenario(path: str | Path) -> Scenario:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: not valid JSON ({error})") from None
    return parse_scenario(data)
