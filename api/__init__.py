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
* Stored-read work without HTTP, used by the search, hold and evidence endpoints and by
  ``plateflow search|hold|evidence``: :class:`SearchSpec` (a validated plate, partial or
  canvass search and its audit terms), :class:`PastSearch` (past-read matching of a hotlist
  entry, historical alerts), :func:`alerts_by_read` (alerts of reads, covert ones only when
  allowed), :func:`place_hold`, :func:`export_case`, :func:`release_case`; their errors are
  :class:`StoreQueryError` (with the HTTP ``status`` and the ``field`` to fix).
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
from api._store_cases import (
    export_case,
    new_export_id,
    place_hold,
    release_case,
    release_summary,
)
from api._store_pages import alerts_by_read
from api._store_past import (
    PAST_SCHEMA,
    PastSearch,
    advisories_for,
    list_visible,
    publish_historical,
)
from api._store_query import (
    COVERT_PERMISSION,
    MATCH_MODES,
    READ_RESULT_SCHEMA,
    SearchSpec,
    StoreQueryError,
    to_ms,
    utc_window,
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
    "COVERT_PERMISSION",
    "GUARDED_RESPONSES",
    "MATCH_MODES",
    "MAX_BODY_BYTES",
    "MAX_READS_PER_REQUEST",
    "PAST_SCHEMA",
    "READ_RESULT_SCHEMA",
    "ApiError",
    "Guard",
    "IngestResult",
    "Justification",
    "PastSearch",
    "Rejection",
    "SearchSpec",
    "StoreQueryError",
    "VendorItems",
    "advisories_for",
    "alerts_by_read",
    "create_app",
    "export_case",
    "generate_ingest_token",
    "guard",
    "ingest_objects",
    "list_visible",
    "new_export_id",
    "openalpr_items",
    "openalpr_read",
    "place_hold",
    "platerecognizer_items",
    "platerecognizer_read",
    "publish_historical",
    "region_to_state",
    "reject_raw",
    "release_case",
    "release_summary",
    "to_ms",
    "utc_window",
]
