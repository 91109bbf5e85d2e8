"""How far a search may reach (427.3(d): a canvass is about a scene, a partial plate names
what was seen): the time window of each search kind, the canvass area, and the known
characters of a partial plate, each a setting (:class:`~service.ServiceConfig`).

A search over a bound is refused with :class:`~service.Invalid` naming the field, the bound
and how to override it, unless the actor holds ``search:override`` (records supervisors) and
gives an ``override_reason``; the override and the bounds it passed are then in the audit
terms of the search (``terms.override``). A reason from an actor without the permission is a
refusal (:class:`~service.Forbidden`), audited like every other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matchers
from records import Permission
from service._config import ServiceConfig
from service._door import Actor
from service._errors import Forbidden, Invalid
from service._query import SearchSpec, _polygon

__all__ = ["Overreach", "check_bounds", "overreach"]

_HOW = (
    "narrow the search, or have a supervisor (search:override) repeat it with "
    "override_reason (CLI --override-reason) saying why"
)
#: Kilometres per degree of latitude (and of longitude at the equator), WGS 84 mean.
_KM_PER_DEGREE = 111.195


@dataclass(frozen=True)
class Overreach:
    """One bound a search passes: the field to fix, the setting, the bound and the value."""

    field: str
    setting: str
    bound: float
    value: float
    text: str

    def as_terms(self) -> dict[str, Any]:
        return {"field": self.field, "bound": self.bound, "value": round(self.value, 3)}


def _area_km2(spec: SearchSpec) -> float:
    if spec.center is not None and spec.radius_m is not None:
        return math.pi * (spec.radius_m / 1000) ** 2
    polygon = _polygon(spec.polygon or {})
    # Equal-area enough at a county's scale: degrees to km, longitude shrunk by the latitude.
    lat0 = math.radians(polygon.centroid.y)
    return float(polygon.area) * _KM_PER_DEGREE**2 * math.cos(lat0)


def overreach(spec: SearchSpec, config: ServiceConfig) -> list[Overreach]:
    """Every bound of ``config`` that ``spec`` passes (empty when it keeps within them)."""
    found: list[Overreach] = []
    days = (spec.end - spec.start).total_seconds() / 86_400
    limit = getattr(config, f"search_max_days_{spec.kind}")
    if days > limit:
        text = f"a {spec.kind} search covers at most {limit:g} days; this one covers {days:.4g}"
        found.append(Overreach("start", f"search_max_days_{spec.kind}", limit, days, text))
    if spec.kind == "canvass":
        area, most = _area_km2(spec), config.search_max_area_km2
        if area > most:
            where = "radius_m" if spec.center is not None else "polygon"
            text = f"a canvass covers at most {most:g} km²; this one covers {area:.4g} km²"
            found.append(Overreach(where, "search_max_area_km2", most, area, text))
    if spec.kind == "partial":
        assert spec.pattern is not None
        least = config.search_min_known_characters
        try:
            known = matchers.require_known_characters(spec.pattern, least)
        except matchers.MatchersError as exc:
            known = matchers.require_known_characters(spec.pattern, 0)
            setting = "search_min_known_characters"
            found.append(Overreach("pattern", setting, least, known, str(exc)))
    return found


def check_bounds(
    spec: SearchSpec,
    config: ServiceConfig,
    actor: Actor,
    reason: str | None,
    *,
    fields: tuple[str, ...] | None = None,
) -> dict[str, Any] | None:
    """None when ``spec`` keeps within the bounds (only those of ``fields``, when given); the
    override's audit terms when it passes some with a supervisor's ``reason``. Raises
    :class:`Invalid` (over a bound, no override) or :class:`Forbidden` (an override without
    ``search:override``)."""
    over = [o for o in overreach(spec, config) if fields is None or o.field in fields]
    why = (reason or "").strip()
    if not over:
        return None
    if not why:
        first = over[0]
        setting = f"PLATEFLOW_{first.setting.upper()}"
        msg = f"{first.field}: {first.text} (bound {setting}); {_HOW}"
        raise Invalid(msg, first.field, reason="over_bound")
    if not actor.can(Permission.SEARCH_OVERRIDE):
        msg = (
            f"an override of the search bounds needs {Permission.SEARCH_OVERRIDE} "
            f"(records supervisors); {over[0].text}"
        )
        raise Forbidden(msg, "override_reason")
    if len(why) > 500:
        raise Invalid("override_reason is over 500 characters; say why briefly", "override_reason")
    return {"reason": why, "bounds": [o.as_terms() for o in over]}
