"""Camera ingest authentication: a token per camera or per agent, in a header.

Cameras and ALPR agents are machines, not members; they never get a login session (issue 4:
"camera ingest keeps its own tokens"). The token travels in ``X-Plateflow-Token``; Plate
Recognizer Stream can only be configured with an ``Authorization`` header
(``webhook_header = Authorization: Token ...`` in its config.ini), so ``Authorization: Token
<t>`` and ``Authorization: Bearer <t>`` are accepted too. Tokens never travel in the URL, where
proxies would log them.

Each token is bound to the cameras it may post for (:class:`plateflow.settings.IngestTokens`);
:func:`foreign_cameras` finds the reads of a request it may not post. The tokens file
(``PLATEFLOW_INGEST_TOKENS_FILE``) is re-read when it changes (:class:`TokenSource`), so a token
is added or revoked without a restart.

With no token configured ingest is closed, not open: every request is refused with 401 and a
message naming ``PLATEFLOW_INGEST_TOKENS``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from api._metrics import AUTH_FAILURES, INGEST_TOKEN_RELOADS
from plateflow.settings import IngestToken, IngestTokens

log = logging.getLogger(__name__)

__all__ = [
    "INGEST_SECURITY_SCHEME",
    "INGEST_TOKEN_HEADER",
    "TokenRefusal",
    "TokenSource",
    "authenticate_ingest",
    "camera_refusal",
    "foreign_cameras",
]

INGEST_TOKEN_HEADER = "X-Plateflow-Token"

#: The OpenAPI security scheme of the ingest endpoints (``components.securitySchemes``).
INGEST_SECURITY_SCHEME: dict[str, Any] = {
    "type": "apiKey",
    "in": "header",
    "name": INGEST_TOKEN_HEADER,
    "description": (
        "Camera ingest token: one of PLATEFLOW_INGEST_TOKENS (each bound to the cameras it may "
        "post for). `Authorization: Token <token>` or `Authorization: Bearer <token>` are "
        "accepted for agents that cannot set this header."
    ),
}


@dataclass(frozen=True)
class TokenRefusal:
    """Why an ingest request is refused: the metric ``reason`` and the 401 answer's detail."""

    reason: str
    detail: str


def _refuse(reason: str, detail: str, client: str, path: str) -> TokenRefusal:
    AUTH_FAILURES.labels("ingest", reason).inc()
    log.warning("ingest refused (%s) from %s on %s", reason, client, path)
    return TokenRefusal(reason, detail)


def authenticate_ingest(
    header_token: str | None,
    authorization: str | None,
    configured: IngestTokens,
    *,
    client: str = "unknown",
    path: str = "",
) -> IngestToken | TokenRefusal:
    """The configured token the request carries, else why not (counted, logged).

    :arg header_token: the ``X-Plateflow-Token`` header (empty counts as absent).
    :arg authorization: the ``Authorization`` header (``Token <t>`` or ``Bearer <t>``).
    :arg client: the peer address, for the log line only. The token itself is never logged.
    """
    if not configured:
        return _refuse(
            "not_configured",
            "camera ingest is disabled because no ingest token is configured: add one with "
            "`plateflow ingest token add --camera CAMERA` to the file PLATEFLOW_INGEST_TOKENS_FILE "
            "names, or set PLATEFLOW_INGEST_TOKENS to comma-separated tokens of at least 16 "
            "characters (or start `plateflow serve --generate-ingest-token`), and send one in "
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
    found = configured.find(token)
    if found is None:
        return _refuse(
            "invalid",
            f"the {INGEST_TOKEN_HEADER} token is not one of the configured ingest tokens "
            "(PLATEFLOW_INGEST_TOKENS); check the camera's configuration",
            client,
            path,
        )
    return found


_CAMERA = itemgetter("camera_id")


def foreign_cameras(token: IngestToken, reads: Sequence[dict[str, Any]]) -> list[str]:
    """The camera ids of ``reads`` that ``token`` may not post for, sorted (``[]``: all allowed).

    One C-level pass over the reads (a set of their cameras), then a set difference."""
    if token.cameras is None:
        return []
    cameras = set(map(_CAMERA, reads))
    if cameras <= token.cameras:
        return []
    return sorted(cameras - token.cameras)


def camera_refusal(token: IngestToken, foreign: list[str], client: str, path: str) -> str:
    """The 403 detail for a request with reads of ``foreign`` cameras (counted, logged)."""
    shown = ", ".join(repr(c) for c in foreign[:10]) + (" ..." if len(foreign) > 10 else "")
    allowed = sorted(token.cameras or ())
    mine = ", ".join(repr(c) for c in allowed[:10]) + (" ..." if len(allowed) > 10 else "")
    _refuse("camera", "", client, path)
    return (
        f"ingest token {token.token_id!r} may not post reads for camera {shown} (it may post "
        f"for {mine}); nothing of this request was stored: send each camera's reads with its "
        "own token, or have an administrator add the camera to this token "
        "(`plateflow ingest token add --camera ...` issues a new one)"
    )


#: Seconds between two looks at the tokens file's modification time (one ``stat``).
RELOAD_CHECK_S = 1.0


class TokenSource:
    """The current ingest tokens: the configured ones, re-read from their file when it changes.

    :meth:`current` looks at the file (one ``stat``) at most every :data:`RELOAD_CHECK_S`
    seconds, and re-reads it when its modification time, size or inode changed (a Kubernetes
    secret volume swaps the file by a symlink: a new inode). A file that cannot be read or parsed
    keeps the tokens in use (logged at ERROR, counted in
    ``plateflow_api_ingest_token_reloads_total{outcome="failed"}``): a typo must not open or close
    every camera's door. Each API process watches the file itself.
    """

    def __init__(self, tokens: IngestTokens, *, check_every: float = RELOAD_CHECK_S) -> None:
        self._tokens = tokens
        self._check_every = check_every
        self._next = time.monotonic() + check_every
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._tokens.path is None:
            return None
        try:
            st = os.stat(self._tokens.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> IngestTokens:
        """The tokens to check a request against now."""
        if self._tokens.path is None:
            return self._tokens
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._check_every
            stamp = self._stamp()
            if stamp is not None and stamp != self._seen:
                self._seen = stamp
                self._reload()
        return self._tokens

    def _reload(self) -> None:
        path = self._tokens.path
        assert path is not None
        try:
            tokens = IngestTokens.parse(path.read_text(encoding="utf-8")).at(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            INGEST_TOKEN_RELOADS.labels("failed").inc()
            log.error(
                "the ingest tokens file %s changed but cannot be used (%s); the %d tokens "
                "read before stay in force",
                path,
                exc,
                len(self._tokens),
            )
            return
        INGEST_TOKEN_RELOADS.labels("ok").inc()
        log.info("ingest tokens re-read from %s: %d token(s)", path, len(tokens))
        self._tokens = tokens
