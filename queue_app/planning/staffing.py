"""How many counters an interval needs: Erlang C, and Erlang A for customers who give up.

Pure functions, no database. Rates per hour, times in minutes or seconds as named.

- Erlang C (M/M/N): P(wait) = C(N, A) with offered load A = rate x mean visit; the share called
  within t is 1 - C(N, A) exp(-(N - A) t / mean visit).
- Erlang A (M/M/N+M): customers give up after an exponential patience. Computed exactly from the
  birth-death chain of the number in the branch (truncated where its probability is negligible):
  abandonment = patience rate x mean queue / arrival rate; the share called within t is the chance
  that a newcomer's wait until a counter takes it (the queue ahead shrinking by service and by
  others giving up) is at most t, computed by uniformisation. As patience grows it becomes
  Erlang C; as patience shrinks nobody waits and abandonment tends to Erlang B's loss.
"""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Staffing:
    counters: int
    service_level: float  # share called within the target wait
    abandon: float  # share who give up (0 without patience)

    def as_dict(self) -> dict:
        return {"counters": self.counters, "service_level": round(self.service_level, 4),
                "abandon": round(self.abandon, 4)}


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/N/N (stable recursion)."""
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def erlang_c(servers: int, load: float) -> float:
    """Probability an arrival waits in M/M/N (1 when the queue is unstable)."""
    if servers <= load:
        return 1.0
    blocking = erlang_b(servers, load)
    return servers * blocking / (servers - load * (1 - blocking))


def erlang_c_service_level(servers: int, rate_per_hour: float, mean_minutes: float, within_seconds: float) -> float:
    load = rate_per_hour * mean_minutes / 60
    if servers <= load:
        return 0.0
    waits = erlang_c(servers, load)
    return 1 - waits * math.exp(-(servers - load) * (within_seconds / 60) / mean_minutes)


def _erlang_a_chain(servers: int, rate: float, mu: float, theta: float) -> list[float]:
    """Stationary distribution of the number in system, per minute rates."""
    weights = [1.0]
    n = 0
    while True:
        n += 1
        death = min(n, servers) * mu + max(n - servers, 0) * theta
        weights.append(weights[-1] * rate / death)
        if n > servers and weights[-1] < 1e-14 * sum(weights) and death > rate:
            break
        if n > servers + 100_000:
            break
    total = sum(weights)
    return [w / total for w in weights]


def erlang_a(servers: int, rate_per_hour: float, mean_minutes: float, within_seconds: float,
             patience_minutes: float) -> tuple[float, float]:
    """(service level, abandonment) of M/M/N+M."""
    rate, mu, theta = rate_per_hour / 60, 1 / mean_minutes, 1 / patience_minutes
    if rate <= 0:
        return 1.0, 0.0
    pi = _erlang_a_chain(servers, rate, mu, theta)
    queue_mean = sum(p * (n - servers) for n, p in enumerate(pi) if n > servers)
    abandon = theta * queue_mean / rate
    # A newcomer finding n >= N in the branch has j = n - N ahead; it reaches a counter after j + 1
    # queue departures, at rate N mu + i theta with i ahead (the newcomer itself waits on: the
    # "virtual" wait, as in Erlang C).
    ahead = [p for n, p in enumerate(pi) if n >= servers]
    if not ahead:
        return 1.0, abandon
    t = within_seconds / 60
    top = len(ahead) - 1
    uniform = servers * mu + top * theta
    steps_mean = uniform * t
    # v[j]: probability of still waiting with j ahead; index len(ahead) is "called".
    v = ahead[:] + [0.0]
    called = 0.0
    k, cumulative = 0, 0.0
    log_poisson = -steps_mean
    while True:
        weight = math.exp(log_poisson)
        called += weight * v[-1]
        cumulative += weight
        if cumulative > 1 - 1e-12 or k > steps_mean + 50 * math.sqrt(steps_mean + 1) + 50:
            break
        moved = [0.0] * len(v)
        for j in range(len(ahead)):
            if not v[j]:
                continue
            down = (servers * mu + j * theta) / uniform
            moved[j] += v[j] * (1 - down)
            moved[j - 1 if j > 0 else len(ahead)] += v[j] * down
        moved[-1] += v[-1]
        v = moved
        k += 1
        log_poisson += math.log(steps_mean) - math.log(k)
    called += (1 - cumulative) * v[-1]
    service_level = 1 - sum(ahead) + called
    return min(1.0, service_level), abandon


def staff_for(rate_per_hour: float, mean_minutes: float, target: float, within_seconds: float,
              patience_minutes: float | None = None, max_abandon: float = 0.05, max_counters: int = 500) -> Staffing:
    """The fewest counters meeting the service-level target (and the abandonment cap with patience)."""
    if rate_per_hour < 0 or mean_minutes <= 0 or not 0 < target < 1 or within_seconds < 0:
        raise ValueError("rate >= 0, mean minutes > 0, 0 < target < 1 and a wait >= 0 are needed")
    if rate_per_hour == 0:
        return Staffing(0, 1.0, 0.0)
    load = rate_per_hour * mean_minutes / 60
    start = max(1, math.floor(load) if patience_minutes else math.floor(load) + 1)
    for servers in range(start, max_counters + 1):
        if patience_minutes:
            level, abandon = erlang_a(servers, rate_per_hour, mean_minutes, within_seconds, patience_minutes)
            if level >= target and abandon <= max_abandon:
                return Staffing(servers, level, abandon)
        else:
            level = erlang_c_service_level(servers, rate_per_hour, mean_minutes, within_seconds)
            if level >= target:
                return Staffing(servers, level, 0.0)
    raise ValueError(f"more than {max_counters} counters would be needed")
