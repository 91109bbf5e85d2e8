"""plateflow's HTTP face: camera ingest, login, and thin routes over :mod:`service`.

Public API:

* :func:`create_app` — the FastAPI app for a :class:`~plateflow.settings.Settings` and a Redis
  URL (and optionally a records engine); ``plateflow serve`` runs it under uvicorn. Its
  ``app.state.door`` is the :class:`service.Door` every route acts through.
* :func:`guard` / :class:`Guard` — the dependency every data endpoint takes, given its
  :class:`service.Act`: the session, role, training and justification checked by the door
  before the request is parsed, every refusal audited; the route then calls the act with
  ``g.door`` and ``g.actor``. :data:`GUARDED_RESPONSES` documents their refusals.
* :func:`ingest_objects` — the ingest core without HTTP (validate, append, dead-letter), used by
  the endpoints and by ``plateflow ingest FILE``; returns an :class:`IngestResult`.
* :func:`openalpr_items` / :func:`openalpr_read`, :func:`platerecognizer_items` /
  :func:`platerecognizer_read` — the vendor webhook adapters, pure.
* :func:`service_status` — the HTTP status of a :class:`service.ServiceError`, by class.
"""

from api._access import GUARDED_RESPONSES, Guard, guard
from api._app import create_app
from api._errors import ApiError, service_status
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
    "service_status",
]
