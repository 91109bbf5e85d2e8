"""The OpenAPI description of the camera ingest endpoints.

The ingest routes are plain Starlette routes (see :mod:`api._routes_ingest`: FastAPI's request
machinery costs more than the whole ingest of one read), so FastAPI does not describe them
itself; :func:`add_ingest_docs` adds their operations, schemas and security scheme to the
document FastAPI generates for everything else. The pydantic models here describe the answer;
they are not used on the request path.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api._auth_ingest import INGEST_SECURITY_SCHEME
from api._schemas import ErrorBody

__all__ = ["INGEST_OPERATIONS", "IngestResponse", "RejectedItem", "add_ingest_docs"]


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in the request (0-based).")
    reason: str = Field(description="`field: what is wrong and how to fix it`.")


class IngestResponse(BaseModel):
    accepted: int = Field(description="Reads validated and written to the read streams.")
    rejected: list[RejectedItem] = Field(
        description="Items rejected and sent to the dead-letter stream, with the reason."
    )
    ignored: int = Field(
        0, description="Vendor messages that carry no read (heartbeats, other events)."
    )


_ERRORS: dict[int, str] = {
    400: "The body is not JSON (or has no `json` field).",
    401: "No ingest token, an unknown one, or none set up.",
    403: "A read of a camera the token may not post for: the whole request refused (the "
    "cameras named), those reads dead-lettered, nothing else stored.",
    413: "Body or read count over the per-request limit.",
    422: "JSON that is neither an object nor an array.",
    503: "Redis is unavailable; nothing stored, retry.",
}

_READ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Read",
    "description": "A canonical read (ARCHITECTURE.md 'Read'); unknown fields are ignored. "
    "The read records the id of the ingest token that posted it (`token_id`); a `token_id` "
    "sent in the body is replaced.",
    "required": ["camera_id", "plate", "ts", "confidence"],
    "properties": {
        "read_id": {"type": "string", "description": "Unique; derived when absent."},
        "camera_id": {"type": "string"},
        "plate": {"type": "string", "description": "2-10 letters/digits once normalised."},
        "ts": {
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}],
            "description": "RFC 3339 with offset, or epoch milliseconds.",
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "state": {"type": "string", "description": "Two-letter state or province."},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"plate": {"type": "string"}, "confidence": {"type": "number"}},
            },
        },
        "agency": {"type": "string"},
        "image_ref": {"type": "string"},
    },
}

_OPENALPR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "OpenALPR agent message",
    "description": "An `alpr_group`, `alpr_results` or `heartbeat` message (or an array).",
    "properties": {
        "data_type": {"type": "string", "enum": ["alpr_group", "alpr_results", "heartbeat"]},
        "agent_uid": {"type": "string"},
        "camera_id": {"type": "integer"},
        "epoch_start": {"type": "integer", "description": "Epoch milliseconds."},
        "best_plate_number": {"type": "string"},
        "best_confidence": {"type": "number", "minimum": 0, "maximum": 100},
        "best_region": {"type": "string", "example": "us-ma"},
        "best_uuid": {"type": "string"},
        "gps_latitude": {"type": "number"},
        "gps_longitude": {"type": "number"},
        "candidates": {"type": "array", "items": {"type": "object"}},
    },
}

_PLATERECOGNIZER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Plate Recognizer Stream webhook",
    "properties": {
        "hook": {"type": "object", "properties": {"event": {"type": "string"}}},
        "data": {
            "type": "object",
            "properties": {
                "camera_id": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
                "results": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def _body_doc(schema: dict[str, Any], multipart: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"oneOf": [schema, {"type": "array", "items": schema}]}}
    }
    if multipart:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": ["json"],
                "properties": {
                    "json": {"type": "string", "description": "The webhook JSON."},
                    "upload": {"type": "string", "format": "binary"},
                },
            }
        }
    return {"requestBody": {"required": True, "content": content}}


#: path -> (operation id, summary, description, request body schema, multipart accepted)
INGEST_OPERATIONS: dict[str, tuple[str, str, str, dict[str, Any], bool]] = {
    "/v1/reads": (
        "post_reads",
        "Ingest canonical reads",
        "One canonical read or a JSON array of up to 10,000. Valid reads go to the "
        "partitioned read streams; each invalid one is answered with its index and reason "
        "and kept in the dead-letter stream.",
        _READ_SCHEMA,
        False,
    ),
    "/v1/ingest/openalpr": (
        "post_openalpr",
        "OpenALPR agent webhook",
        "The OpenALPR agent's HTTP POST (`upload_address`): `alpr_group` messages are one "
        "read each, `alpr_results` one per result, heartbeats are ignored. Confidences are "
        "percentages, `epoch_start` epoch milliseconds, `best_region` like `us-ma`.",
        _OPENALPR_SCHEMA,
        False,
    ),
    "/v1/ingest/platerecognizer": (
        "post_platerecognizer",
        "Plate Recognizer Stream webhook",
        "A Plate Recognizer Stream webhook, as JSON or as multipart/form-data with the JSON "
        "in the `json` field (the `upload` image is not stored). One read per entry of "
        "`data.results`; events other than `recognition` are ignored.",
        _PLATERECOGNIZER_SCHEMA,
        True,
    ),
}

_REF = "#/components/schemas/{model}"


def _model_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def add_ingest_docs(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the ingest operations to an OpenAPI document (in place; returned for chaining)."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in _model_schemas(IngestResponse, ErrorBody).items():
        schemas.setdefault(name, schema)
    components.setdefault("securitySchemes", {})["IngestToken"] = INGEST_SECURITY_SCHEME
    error_ref = {"$ref": _REF.format(model="ErrorBody")}
    answer_ref = {"$ref": _REF.format(model="IngestResponse")}
    for path, (op_id, summary, description, body, multipart) in INGEST_OPERATIONS.items():
        responses: dict[str, Any] = {
            "202": {
                "description": "Stored (and rejected items dead-lettered) once Redis acknowledged.",
                "content": {"application/json": {"schema": answer_ref}},
            }
        }
        for status, text in _ERRORS.items():
            responses[str(status)] = {
                "description": text,
                "content": {"application/json": {"schema": error_ref}},
            }
        operation = {
            "tags": ["ingest"],
            "summary": summary,
            "description": description,
            "operationId": op_id,
            "security": [{"IngestToken": []}],
            "responses": responses,
            **_body_doc(body, multipart),
        }
        doc.setdefault("paths", {}).setdefault(path, {})["post"] = operation
    return doc
