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
from dataclasses import dataclass
from typing import Any

from api._metrics import AUTH_FAILURES

log = logging.getLogger(__name__)

__all__ = [
    "INGEST_SECURITY_SCHEME",
    "INGEST_TOKEN_HEADER",
    "TokenRefusal",
    "ingest_token_refusal",
    "token_matches",
]

INGEST_TOKEN_HEADER = "X-Plateflow-Token"

#: The OpenAPI security scheme of the ingest endpoints (``components.securitySchemes``).
INGEST_SECURITY_SCHEME: dict[str, Any] = {
    "type": "apiKey",
    "in": "header",
    "name": INGEST_TOKEN_HEADER,
    "description": (
        "Camera ingest token: one of PLATEFLOW_INGEST_TOKENS. `Authorization: Token <token>` "
        "or `Authorization: Bearer <token>` are accepted for agents that cannot set this header."
    ),
}


def token_matches(candidate: str, configured: tuple[str, ...]) -> bool:
    """Constant-time membership: every configured token is compared, whatever matches first."""
    given = candidate.encode()
    found = False
    for token in configured:
        found |= hmac.compare_digest(given, token.encode())
    return found


@dataclass(frozen=True)
class TokenRefusal:
    """Why an ingest request is refused: the metric ``reason`` and the 401 answer's detail."""

    reason: str
    detail: str


def _refuse(reason: str, detail: str, client: str, path: str) -> TokenRefusal:
    AUTH_FAILURES.labels("ingest", reason).inc()
    log.warning("ingest refused (%s) from %s on %s", reason, client, path)
    return TokenRefusal(reason, detail)


def ingest_token_refusal(
    header_token: str | None,
    authorization: str | None,
    configured: tuple[str, ...],
    *,
    client: str = "unknown",
    path: str = "",
) -> TokenRefusal | None:
    """``None`` if the request carries a configured ingest token, else why not (counted, logged).

    :arg header_token: the ``X-Plateflow-Token`` header (empty counts as absent).
    :arg authorization: the ``Authorization`` header (``Token <t>`` or ``Bearer <t>``).
    :arg client: the peer address, for the log line only. The token itself is never logged.
    """
    if not configured:
        return _refuse(
            "not_configured",
            "camera ingest is disabled because no ingest token is configured: set "
            "PLATEFLOW_INGEST_TOKENS to one or more comma-separated tokens of at least 16 "
            "characters (or start `plateflow serve --generate-ingest-token`) and send one in "
            f"the {INGEST_TOKEN_HEADER} header",
            client,
            path,
        )
    token = header_token or None
    if token is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            token = value.strip()
    if not token:
        return _refuse(
            "missing",
            f"missing ingest token: send the {INGEST_TOKEN_HEADER} header with one of the "
            "tokens configured in PLATEFLOW_INGEST_TOKENS",
            client,
            path,
        )
    if not token_matches(token, configured):
        return _refuse(
            "invalid",
            f"the {INGEST_TOKEN_HEADER} token is not one of the configured ingest tokens "
            "(PLATEFLOW_INGEST_TOKENS); check the camera's configuration",
            client,
            path,
        )
    return None
