"""plateflow's HTTP face: camera ingest, health and metrics (login and audited access follow).

Public API:

* :func:`create_app` — the FastAPI app for a :class:`~plateflow.settings.Settings` and a Redis
  URL; ``plateflow serve`` runs it under uvicorn.
* :func:`ingest_objects` — the ingest core without HTTP (validate, append, dead-letter), used by
  the endpoints and by ``plateflow ingest FILE``; returns an :class:`IngestResult`.
* :func:`openalpr_items` / :func:`openalpr_read`, :func:`platerecognizer_items` /
  :func:`platerecognizer_read` — the vendor webhook adapters, pure.
"""

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
    "MAX_BODY_BYTES",
    "MAX_READS_PER_REQUEST",
    "ApiError",
    "IngestResult",
    "Rejection",
    "VendorItems",
    "create_app",
    "generate_ingest_token",
    "ingest_objects",
    "openalpr_items",
    "openalpr_read",
    "platerecognizer_items",
    "platerecognizer_read",
    "region_to_state",
    "reject_raw",
]
