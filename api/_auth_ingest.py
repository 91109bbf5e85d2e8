"""Camera ingest authentication: a shared token per camera fleet, in a header.

Cameras and ALPR agents are machines, not members; they never get a login session (issue 4:
"camera ingest keeps its own tokens"). The token travels in ``X-Plateflow-Token``; Plate
Recognizer Stream can only be configured with an ``Authorization`` header
(``webhook_header = Authorization: Token ...`` in its config.ini), so ``Authorization: Token
<t>`` and ``Authorization: Bearer <t>`` are accepted too. Tokens never travel in the URL, where
proxies would log them.

With no token configured ingest is closed, not open: every request is refused with 401 and a
message naming ``PLATEFLOW_INGEST_TOKENS``.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api._metrics import AUTH_FAILURES

log = logging.getLogger(__name__)

__all__ = ["INGEST_TOKEN_HEADER", "require_ingest_token", "token_matches"]

INGEST_TOKEN_HEADER = "X-Plateflow-Token"

_token_header = APIKeyHeader(
    name=INGEST_TOKEN_HEADER,
    auto_error=False,
    scheme_name="IngestToken",
    description=(
        "Camera ingest token: one of PLATEFLOW_INGEST_TOKENS. `Authorization: Token <token>` "
        "or `Authorization: Bearer <token>` are accepted for agents that cannot set this header."
    ),
)


def token_matches(candidate: str, configured: tuple[str, ...]) -> bool:
    """Constant-time membership: every configured token is compared, whatever matches first."""
    given = candidate.encode()
    found = False
    for token in configured:
        found |= hmac.compare_digest(given, token.encode())
    return found


def _refuse(request: Request, reason: str, detail: str) -> HTTPException:
    AUTH_FAILURES.labels("ingest", reason).inc()
    client = request.client.host if request.client else "unknown"
    log.warning("ingest refused (%s) from %s on %s", reason, client, request.url.path)
    return HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": INGEST_TOKEN_HEADER}
    )


def require_ingest_token(
    request: Request, header_token: str | None = Security(_token_header)
) -> None:
    """FastAPI dependency: 401 unless the request carries a configured ingest token."""
    configured: tuple[str, ...] = request.app.state.settings.ingest_tokens
    if not configured:
        raise _refuse(
            request,
            "not_configured",
            "camera ingest is disabled because no ingest token is configured: set "
            "PLATEFLOW_INGEST_TOKENS to one or more comma-separated tokens of at least 16 "
            "characters (or start `plateflow serve --generate-ingest-token`) and send one in "
            f"the {INGEST_TOKEN_HEADER} header",
        )
    token = header_token
    if token is None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            token = value.strip()
    if not token:
        raise _refuse(
            request,
            "missing",
            f"missing ingest token: send the {INGEST_TOKEN_HEADER} header with one of the "
            "tokens configured in PLATEFLOW_INGEST_TOKENS",
        )
    if not token_matches(token, configured):
        raise _refuse(
            request,
            "invalid",
            f"the {INGEST_TOKEN_HEADER} token is not one of the configured ingest tokens "
            "(PLATEFLOW_INGEST_TOKENS); check the camera's configuration",
        )
