"""Vendor webhook payloads -> canonical read candidates (ARCHITECTURE "Read").

Each vendor has two pure steps, so a bad read is routed on its own and the rest of the payload
still lands:

* ``*_items(payload)`` splits one webhook body into self-contained per-read items (what the
  dead-letter stream stores when that read is rejected) and counts the messages that carry no
  read at all (heartbeats, non-recognition events) as *ignored*;
* ``*_read(item)`` turns one item into a canonical read through
  :func:`matchers.reads.validate_read` (so a vendor read is judged exactly like a canonical
  one), raising :class:`~matchers.reads.ReadError` under the *vendor's* field name
  (``best_plate_number``, ``data.timestamp``), so the camera operator reads the name they know.

Embedded images (base64 JPEG crops) are dropped from the items: they are not part of a read,
and a dead-letter stream full of megabyte crops would crowd out Redis memory.

Layouts:

* OpenALPR agent (``alprd``) — "JSON Group Results" and "JSON Plate Results" in the OpenALPR
  documentation, ``openalpr/doc`` ``source/app_integration.include`` (https://doc.openalpr.com/
  on_premises.html#json-group-results): ``data_type`` ``alpr_group`` | ``alpr_results`` |
  ``heartbeat``; confidences are percentages 0-100; ``epoch_start``/``epoch_time`` are epoch
  milliseconds; ``best_region`` is ``us-mo`` (older agents send ``mo``); newer agents add
  ``gps_latitude``/``gps_longitude`` (0, 0 when the agent has no fix).
* Plate Recognizer Stream — "Webhooks and Outputs" (https://guides.platerecognizer.com/docs/
  stream/results) and the vendor's webhook samples (parkpow/deep-license-plate-recognition,
  ``webhooks/``): ``{"hook": {"event": "recognition", ...}, "data": {"camera_id", "timestamp",
  "results": [{"plate", "score", "region": {"code"}, "candidates": [{"plate", "score"?}],
  "vehicle", ...}]}}``, posted as JSON or as ``multipart/form-data`` with the JSON in a field
  named ``json`` and the frame in ``upload``. Stream's candidates often carry no ``score``.
"""

from __future__ import annotations

import email.parser
import email.policy
import math
from collections.abc import Callable, Mapping
from typing import Any

from matchers.reads import ReadError, validate_read

__all__ = [
    "VendorItems",
    "json_from_multipart",
    "openalpr_items",
    "openalpr_read",
    "platerecognizer_items",
    "platerecognizer_read",
    "region_to_state",
]

#: Keys holding base64 images in vendor payloads; dropped from items (see module docstring).
_IMAGE_KEYS = frozenset({"plate_crop_jpeg", "vehicle_crop_jpeg", "overview_jpeg", "image"})

# Two-letter codes a region without a country prefix may be (older OpenALPR agents send "mo"):
# US states, DC, territories and Canadian provinces. "gb" or "fr" are countries, not states.
_SUBDIVISIONS = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP "
    "AB BC MB NB NL NS NT NU ON PE QC SK YT".split()
)


class VendorItems:
    """The per-read items of one webhook body and how many messages carried no read."""

    __slots__ = ("ignored", "items")

    def __init__(self, items: list[Any], ignored: int = 0) -> None:
        self.items = items
        self.ignored = ignored


def _strip_images(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in _IMAGE_KEYS:
            continue
        out[key] = _stripped(value)
    return out


def _stripped(value: Any) -> Any:
    """``value`` without images if it is an object; anything else as it is."""
    return _strip_images(value) if isinstance(value, Mapping) else value


def _split(payload: Any, split_one: Callable[[Mapping[str, Any]], list[Any] | None]) -> VendorItems:
    """The read items of a vendor POST (one message or a JSON array of them): ``split_one``
    gives those of one message, or None for a message that carries no read (it is counted as
    ignored). A message that is not an object is an item as it is, rejected with a reason."""
    items: list[Any] = []
    ignored = 0
    for msg in payload if isinstance(payload, list) else [payload]:
        if not isinstance(msg, Mapping):
            items.append(msg)
            continue
        found = split_one(msg)
        if found is None:
            ignored += 1
        else:
            items.extend(found)
    return VendorItems(items, ignored)


def region_to_state(code: Any) -> str | None:
    """``us-ma`` -> ``MA``, ``ca-qc`` -> ``QC``, ``mo`` -> ``MO``; countries and unknown -> None.

    A read's ``state`` is optional, so a region that names no two-letter subdivision (``gb``,
    ``mx-nle``, empty) yields ``None`` rather than a rejection.
    """
    if not isinstance(code, str):
        return None
    text = code.strip().upper()
    if "-" in text:
        sub = text.rsplit("-", 1)[1]
        return sub if len(sub) == 2 and sub.isalpha() else None
    return text if text in _SUBDIVISIONS else None


def _percent(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReadError(field, "is required: a confidence percentage from 0 to 100")
    if not 0 <= value <= 100:
        raise ReadError(field, f"{value!r} is outside 0..100 (OpenALPR sends percentages)")
    return float(value) / 100.0


def _gps(lat: Any, lon: Any) -> tuple[Any, Any]:
    # OpenALPR reports 0, 0 when the agent has no GPS fix; no ALPR camera sits at Null Island.
    if lat in (0, 0.0) and lon in (0, 0.0):
        return None, None
    return lat, lon


# -- OpenALPR -------------------------------------------------------------------------------


def openalpr_items(payload: Any) -> VendorItems:
    """Split an OpenALPR agent POST (one message or a JSON array of them) into read items.

    ``alpr_group`` is one read; ``alpr_results`` is one read per entry of ``results`` (each item
    carries the envelope under ``envelope``); ``heartbeat`` and other data types are ignored.
    A message that is not an object, or has no ``data_type``, is still an item so that it is
    rejected with a reason instead of vanishing.
    """
    return _split(payload, _openalpr_message)


def _openalpr_message(msg: Mapping[str, Any]) -> list[Any] | None:
    kind = msg.get("data_type")
    if kind in ("alpr_group", None):
        return [_strip_images(msg)]
    if kind != "alpr_results":
        return None  # heartbeat, alert, video_upload, ...: not a read
    envelope = _strip_images({k: v for k, v in msg.items() if k != "results"})
    results = msg.get("results")
    if not isinstance(results, list):
        return [envelope | {"results": results}]
    count = len(results)
    return [
        {"envelope": envelope, "result": _stripped(r), "result_index": i, "result_count": count}
        for i, r in enumerate(results)
    ]


def _openalpr_camera(msg: Mapping[str, Any]) -> Any:
    camera = msg.get("camera_id")
    agent = msg.get("agent_uid")
    if camera is None or camera == "":
        return None
    ok_camera = isinstance(camera, (int, str)) and not isinstance(camera, bool)
    if ok_camera and isinstance(agent, str) and agent:
        # The agent's own convention (its uuids are "{agent_uid}-{camera_id}-{epoch_ms}"):
        # camera ids are only unique within one agent.
        return f"{agent}-{camera}"
    return camera


def _openalpr_candidates(raw: Any, field: str) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ReadError(field, "must be a list of {plate, confidence}")
    out = []
    for i, cand in enumerate(raw):
        if not isinstance(cand, Mapping):
            raise ReadError(f"{field}[{i}]", "must be an object {plate, confidence}")
        out.append(
            {
                "plate": cand.get("plate"),
                "confidence": _percent(cand.get("confidence"), f"{field}[{i}].confidence"),
            }
        )
    return out


def _validated(candidate: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """``validate_read``, with the canonical field name in a rejection put back to the vendor's."""
    try:
        return validate_read(candidate)
    except ReadError as exc:
        head = exc.field.split(".", 1)[0].split("[", 1)[0]
        vendor = names.get(head)
        if vendor is None:
            raise
        message = exc.reason[len(exc.field) + 2 :]
        raise ReadError(vendor + exc.field[len(head) :], message) from exc


_OPENALPR_GROUP_NAMES = {
    "read_id": "best_uuid", "camera_id": "camera_id", "plate": "best_plate_number",
    "ts": "epoch_start", "confidence": "best_confidence", "state": "best_region",
    "lat": "gps_latitude", "lon": "gps_longitude", "candidates": "candidates",
    "image_ref": "best_uuid",
}  # fmt: skip
_OPENALPR_RESULT_NAMES = {
    "read_id": "uuid", "camera_id": "camera_id", "plate": "results[].plate",
    "ts": "epoch_time", "confidence": "results[].confidence", "state": "results[].region",
    "lat": "gps_latitude", "lon": "gps_longitude", "candidates": "results[].candidates",
    "image_ref": "uuid",
}  # fmt: skip
_PLATERECOGNIZER_NAMES = {
    "camera_id": "data.camera_id", "plate": "data.results[].plate", "ts": "data.timestamp",
    "confidence": "data.results[].score", "state": "data.results[].region.code",
    "lat": "gps.latitude", "lon": "gps.longitude", "candidates": "data.results[].candidates",
    "image_ref": "data.filename",
}  # fmt: skip


def openalpr_read(item: Any) -> dict[str, Any]:
    """One item of :func:`openalpr_items` -> a validated canonical read, or :class:`ReadError`."""
    if not isinstance(item, Mapping):
        raise ReadError("message", f"must be a JSON object, got {type(item).__name__}")
    if "envelope" in item and "result" in item:
        return _openalpr_result(item)
    if item.get("data_type") == "alpr_results":
        raise ReadError("results", "is required: the list of plate results")
    if item.get("data_type") is None:
        raise ReadError(
            "data_type", "is required: alpr_group or alpr_results (is this an OpenALPR agent?)"
        )
    read_id = item.get("best_uuid") or item.get("uuid")
    image_ref = read_id if isinstance(read_id, str) else None
    return _openalpr_plate(item, item, _OPENALPR_GROUP_NAMES, read_id=read_id, image_ref=image_ref)


def _openalpr_plate(
    place: Mapping[str, Any],
    plate: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    read_id: Any,
    image_ref: Any,
) -> dict[str, Any]:
    """The validated canonical read of one OpenALPR plate (an ``alpr_group``, or one entry of
    ``alpr_results``). ``place`` is the message that carries the camera, the time and the GPS
    fix, ``plate`` the object that carries the plate, its confidence, region and candidates
    (for ``alpr_group`` the message itself). ``names`` maps each canonical field to the
    vendor's, the name a rejection carries; its last part is the key the value is read at."""

    def vendor(field: str, source: Mapping[str, Any]) -> Any:
        return source.get(names[field].rsplit(".", 1)[-1])

    lat, lon = _gps(place.get("gps_latitude"), place.get("gps_longitude"))
    candidate = {
        "read_id": read_id,
        "camera_id": _openalpr_camera(place),
        "plate": vendor("plate", plate),
        "ts": vendor("ts", place),
        "confidence": _percent(vendor("confidence", plate), names["confidence"]),
        "state": region_to_state(vendor("state", plate)),
        "lat": lat,
        "lon": lon,
        "candidates": _openalpr_candidates(vendor("candidates", plate), names["candidates"]),
        "image_ref": image_ref,
    }
    return _validated(candidate, names)


def _openalpr_result(item: Mapping[str, Any]) -> dict[str, Any]:
    env = item["envelope"]
    res = item["result"]
    if not isinstance(res, Mapping):
        raise ReadError("results[]", f"must be an object, got {type(res).__name__}")
    uuid = env.get("uuid")
    read_id = None
    if isinstance(uuid, str) and uuid:
        # A frame with several plates shares one uuid; the plate index keeps ids unique.
        read_id = uuid if item.get("result_count", 1) == 1 else f"{uuid}-{item['result_index']}"
    image_ref = uuid if isinstance(uuid, str) else None
    return _openalpr_plate(env, res, _OPENALPR_RESULT_NAMES, read_id=read_id, image_ref=image_ref)


# -- Plate Recognizer -----------------------------------------------------------------------


def platerecognizer_items(payload: Any) -> VendorItems:
    """Split a Plate Recognizer Stream webhook into one item per entry of ``data.results``.

    Each item is ``{"hook": ..., "data": <data without results>, "result": <one result>}``.
    A webhook whose ``hook.event`` is not ``recognition`` is ignored. A body without a ``data``
    object, or without a ``results`` list, is one item that will be rejected with the reason.
    """
    return _split(payload, _platerecognizer_message)


def _platerecognizer_message(msg: Mapping[str, Any]) -> list[Any] | None:
    hook = msg.get("hook")
    event = hook.get("event") if isinstance(hook, Mapping) else None
    if event is not None and event != "recognition":
        return None
    data = msg.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        return [_strip_images(msg)]
    envelope = _strip_images({k: v for k, v in data.items() if k != "results"})
    hook_part = _strip_images(hook) if isinstance(hook, Mapping) else None
    return [{"hook": hook_part, "data": envelope, "result": _stripped(r)} for r in data["results"]]


def _pr_gps(*sources: Any) -> tuple[Any, Any]:
    for src in sources:
        if isinstance(src, Mapping) and isinstance(src.get("gps"), Mapping):
            gps = src["gps"]
            lat = gps.get("latitude", gps.get("lat"))
            lon = gps.get("longitude", gps.get("lon", gps.get("lng")))
            return _gps(lat, lon)
    return None, None


def platerecognizer_read(item: Any) -> dict[str, Any]:
    """One item of :func:`platerecognizer_items` -> a validated canonical read, or ReadError.

    A candidate without a ``score`` (Stream often sends none) gets confidence 0.0: the
    alternative is kept for matching but never presented as more certain than it is.
    """
    if not isinstance(item, Mapping):
        raise ReadError("webhook", f"must be a JSON object, got {type(item).__name__}")
    if "result" not in item:
        data = item.get("data")
        if not isinstance(data, Mapping):
            raise ReadError("data", "is required: the object holding camera_id and results")
        raise ReadError("data.results", "is required: the list of recognition results")
    data = item.get("data") or {}
    res = item["result"]
    if not isinstance(res, Mapping):
        raise ReadError("data.results[]", f"must be an object, got {type(res).__name__}")
    region = res.get("region")
    candidates: list[dict[str, Any]] | None = None
    raw_cands = res.get("candidates")
    if isinstance(raw_cands, list):
        candidates = []
        for cand in raw_cands:
            if isinstance(cand, Mapping):
                score = cand.get("score")
                candidates.append(
                    {"plate": cand.get("plate"), "confidence": 0.0 if score is None else score}
                )
            else:
                candidates.append(cand)
    elif raw_cands is not None:
        raise ReadError("data.results[].candidates", "must be a list of {plate, score}")
    lat, lon = _pr_gps(res, data)
    candidate = {
        "camera_id": data.get("camera_id"),
        "plate": res.get("plate"),
        "ts": data.get("timestamp"),
        "confidence": res.get("score"),
        "state": region_to_state(region.get("code") if isinstance(region, Mapping) else None),
        "lat": lat,
        "lon": lon,
        "candidates": candidates,
        "image_ref": data.get("filename"),
    }
    return _validated(candidate, _PLATERECOGNIZER_NAMES)


def json_from_multipart(body: bytes, content_type: str, field: str = "json") -> bytes:
    """The bytes of the form field ``field`` of a ``multipart/form-data`` body.

    Parsed with the standard library's MIME parser so ingest needs no extra dependency. Raises
    ``ValueError`` naming what is missing.
    """
    if "boundary=" not in content_type:
        raise ValueError("multipart/form-data without a boundary parameter")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("the body is not a multipart message")
    names = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        names.append(str(name))
        if name == field:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
            return str(part.get_payload()).encode()
    shown = ", ".join(names) or "none"
    raise ValueError(f"no form field named {field!r} (fields sent: {shown})")
