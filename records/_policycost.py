"""What a hotlist policy will cost before it goes live (issue 3, "Policy cost check").

The cost is the share of ordinary traffic the list would alert on under the policy, estimated
with :func:`matchers.estimate_hit_rate` on a sample of plates: stored reads when the caller has
them, else :func:`simulated_plates`. Multiplied by a read rate it gives alerts per hour. A policy
over the configured ceiling (``policy_alert_ceiling``) is refused unless forced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matchers
from records._hits import KindShare

#: A sample provider returns up to ``n`` plates of ordinary traffic and says where they came from.
SampleProvider = Callable[[int], "PlateSample"]


@dataclass(frozen=True)
class PlateSample:
    """Plates of ordinary traffic, where they came from, and the read rate if known."""

    plates: Sequence[str]
    source: str
    reads_per_hour: float | None = None


def simulated_plates(n: int, *, seed: int = 20_261_001) -> list[str]:
    """``n`` random plates shaped like US plates (deterministic for a seed); the matchers'
    own simulator, so the cost check and the matching benchmark see the same traffic."""
    return matchers.simulate_plates(n, seed=seed)


def simulated_sample(n: int) -> PlateSample:
    """The default :data:`SampleProvider`: simulated traffic, no read rate."""
    return PlateSample(simulated_plates(n), "simulated traffic")


@dataclass(frozen=True)
class PolicyCost:
    """The estimate for one hotlist under one policy."""

    hotlist: str
    policy: matchers.Policy
    entries: int
    hit_rate: float
    sample_size: int
    sample_source: str
    reads_per_hour: float
    ceiling: float
    #: Measured, beside the estimate: how the list's dispositioned hits ended, by match kind
    #: (:func:`records.confirmed_shares`; filled in by ``service.check_policy``).
    measured: tuple[KindShare, ...] = ()

    @property
    def alerts_per_hour(self) -> float:
        return self.hit_rate * self.reads_per_hour

    @property
    def over_ceiling(self) -> bool:
        return self.hit_rate > self.ceiling

    def describe(self) -> str:
        """One sentence for an operator, with the figures."""
        p = self.policy
        hits = round(self.hit_rate * self.sample_size)
        verdict = "OVER" if self.over_ceiling else "within"
        return (
            f"hotlist {self.hotlist!r} ({self.entries:,} entries) with "
            f"differences={p.differences}, "
            f"ocr_equivalents={p.ocr_equivalents} would alert on {self.hit_rate:.3%} of ordinary "
            f"reads ({hits:,} of {self.sample_size:,} plates of {self.sample_source}): about "
            f"{self.alerts_per_hour:,.1f} alerts per hour at {self.reads_per_hour:,.0f} reads per "
            f"hour; {verdict} the ceiling of {self.ceiling:.3%}"
        )


def estimate_policy_cost(
    hotlist: matchers.Hotlist,
    sample: PlateSample,
    *,
    reads_per_hour: float | None = None,
    ceiling: float,
    default_reads_per_hour: float = 10_000.0,
) -> PolicyCost:
    """Estimate the alert share of ``hotlist`` (with its own policy) on ``sample``.

    The read rate is ``reads_per_hour``, else the sample's, else ``default_reads_per_hour``.
    """
    plates = [matchers.normalise_plate(p) for p in sample.plates]
    rate = matchers.estimate_hit_rate(hotlist, plates) if plates else 0.0
    per_hour = reads_per_hour or sample.reads_per_hour or default_reads_per_hour
    return PolicyCost(
        hotlist=hotlist.name,
        policy=hotlist.policy,
        entries=len(hotlist.entries),
        hit_rate=float(rate),
        sample_size=len(plates),
        sample_source=sample.source,
        reads_per_hour=float(per_hour),
        ceiling=ceiling,
    )
