"""plateflow's HTTP face: camera ingest, login, justified and audited access, health, metrics.

Public API:

* :func:`create_app` — the FastAPI app for a :class:`~plateflow.settings.Settings` and a Redis
  URL (and optionally a records engine); ``plateflow serve`` runs it under uvicorn.
* :func:`guard` / :class:`Guard` — the dependency every data endpoint takes: session, role,
  training and justification checked, every refusal audited; :meth:`Guard.read` runs a query
  inside :func:`records.audited`. New endpoints (searches, the console) use it the same way,
  with :data:`GUARDED_RESPONSES` for their OpenAPI refusals.
* :func:`ingest_objects` — the ingest core without HTTP (validate, append, dead-letter), used by
  the endpoints and by ``plateflow ingest FILE``; returns an :class:`IngestResult`.
* :func:`openalpr_items` / :func:`openalpr_read`, :func:`platerecognizer_items` /
  :func:`platerecognizer_read` — the vendor webhook adapters, pure.
"""

from api._access import GUARDED_RESPONSES, Guard, Justification, guard
from api._app import create_app
from api._errors import ApiError
from api._ingest import (
    MAX_BODY_BYTES,
    MAX_READS_PER_REQUEST,
    IngestResult,
    Rejection,
    generate_ingest_token,
    ingest_objects,
    reject_raw,
)
from api._vendors import (
    VendorItems,
    openalpr_items,
    openalpr_read,
    platerecognizer_items,
    platerecognizer_read,
    region_to_state,
)

__all__ = [
    "GUARDED_RESPONSES",
    "MAX_BODY_BYTES",
    "MAX_READS_PER_REQUEST",
    "ApiError",
    "Guard",
    "IngestResult",
    "Justification",
    "Rejection",
    "VendorItems",
    "create_app",
    "generate_ingest_token",
    "guard",
    "ingest_objects",
    "openalpr_items",
    "openalpr_read",
    "platerecognizer_items",
    "platerecognizer_read",
    "region_to_state",
    "reject_raw",
]
