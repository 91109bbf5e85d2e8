"""Camera ingest tokens: who may post reads for which cameras (pure: no I/O but the file).

Each token maps to the camera ids it may post for: one camera (a camera's own token) or a list
(an ALPR agent serving several cameras). The tokens file holds one token a line as JSON, the way
``plateflow ingest token add`` writes it::

    {"id": "cam-elm-01", "sha256": "9f86d0...", "cameras": ["cam-elm-01"], "agent": null,
     "created": "2026-12-03T08:40:00Z"}

``sha256`` is the hex SHA-256 of the token, so the file never holds a token itself (a token is
192 random bits: its hash cannot be reversed or guessed). ``cameras`` ``["*"]`` lets a token post
for any camera (a central agent). A line that is not JSON is the old format: bare tokens
(separated by commas or white space, at least 16 characters each), which may post for any camera
and get the id ``shared-`` + the first 8 hex digits of their hash. ``#`` starts a comment line.

``id`` is what every read the token posts records (``token_id``), so it names the camera or the
agent, never the secret. This module imports nothing of the project (``plateflow.settings``
parses the setting with it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["ANY_CAMERA", "IngestToken", "IngestTokens", "token_digest"]

#: The camera list entry that lets a token post for every camera.
ANY_CAMERA = "*"
MIN_TOKEN_LENGTH = 16
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_CAMERA = 256
_KEYS = {"id", "sha256", "cameras", "agent", "created"}


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, as the tokens file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IngestToken:
    """One ingest token: its id (recorded on every read it posts), the hash of the secret, the
    cameras it may post for (``None``: any camera), the agent it was issued to and when."""

    token_id: str
    sha256: str
    cameras: frozenset[str] | None
    agent: str | None = None
    created: str | None = None

    def as_line(self) -> str:
        """The tokens-file line of this token."""
        cameras = [ANY_CAMERA] if self.cameras is None else sorted(self.cameras)
        entry = {
            "id": self.token_id,
            "sha256": self.sha256,
            "cameras": cameras,
            "agent": self.agent,
            "created": self.created,
        }
        return json.dumps(entry, separators=(", ", ": "))


@dataclass(frozen=True)
class IngestTokens:
    """The configured ingest tokens, looked up by the hash of the token a request presents.

    ``path`` is the tokens file they were read from (``None``: from the environment), which the
    API re-reads when it changes.
    """

    tokens: tuple[IngestToken, ...] = ()
    path: Path | None = None
    _by_hash: dict[str, IngestToken] = field(default_factory=dict, compare=False, repr=False)
    #: Tokens already presented and found: a request's lookup is then one dict get, not a hash.
    #: Only hits are kept (at most one entry per configured token), so unknown tokens cannot
    #: grow it; a reload builds a new table, so a revoked token leaves with its entry.
    _hits: dict[str, IngestToken] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_hash.update((t.sha256, t) for t in self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def find(self, token: str) -> IngestToken | None:
        """The token whose hash matches ``token``, else ``None``.

        One hash and one dict lookup: the lookup compares digests, which an attacker cannot
        steer, so it leaks nothing about the configured tokens. A token found once is found
        by one dict lookup after that."""
        found = self._hits.get(token)
        if found is None:
            found = self._by_hash.get(token_digest(token))
            if found is not None and len(self._hits) < len(self._by_hash):
                self._hits[token] = found
        return found

    def ids(self) -> set[str]:
        return {t.token_id for t in self.tokens}

    def at(self, path: Path) -> IngestTokens:
        """These tokens, read from the file ``path``."""
        return IngestTokens(self.tokens, path)

    def adding(self, token: IngestToken) -> IngestTokens:
        """These tokens and one more (its id and hash must be new)."""
        if token.token_id in self.ids():
            raise ValueError(f"a token with id {token.token_id!r} exists already")
        if token.sha256 in self._by_hash:
            raise ValueError("this token is configured already")
        return IngestTokens((*self.tokens, token), self.path)

    def without(self, token_id: str) -> IngestTokens:
        """These tokens but the one with ``token_id`` (``ValueError`` if there is none)."""
        if token_id not in self.ids():
            known = ", ".join(sorted(self.ids())) or "none"
            raise ValueError(f"no ingest token has the id {token_id!r} (ids: {known})")
        return IngestTokens(tuple(t for t in self.tokens if t.token_id != token_id), self.path)

    def text(self) -> str:
        """The tokens file holding these tokens (bare tokens are written as hashed lines)."""
        head = "# plateflow ingest tokens: one JSON line per token (plateflow ingest token add)\n"
        return head + "".join(t.as_line() + "\n" for t in self.tokens)

    @classmethod
    def parse(cls, text: str) -> IngestTokens:
        """The tokens of a tokens file or of ``PLATEFLOW_INGEST_TOKENS``.

        Raises :class:`ValueError` saying what is expected and, for a file, on which line."""
        tokens: list[IngestToken] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"line {number}: "
            tokens.extend(_json_line(line, where) if line.startswith("{") else _bare(line, where))
        _check_unique(tokens)
        return cls(tuple(tokens))


def new_token(
    plain: str, token_id: str, cameras: Iterable[str] | None, agent: str | None = None
) -> IngestToken:
    """An :class:`IngestToken` for the secret ``plain`` (checked like a file line)."""
    entry = {
        "id": token_id,
        "sha256": token_digest(plain),
        "cameras": [ANY_CAMERA] if cameras is None else list(cameras),
        "agent": agent,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return _entry(entry, "")


def _bare(line: str, where: str) -> list[IngestToken]:
    out = []
    for token in (t for t in re.split(r"[,\s]+", line) if t):
        if len(token) < MIN_TOKEN_LENGTH:
            msg = (
                f"{where}tokens of at least {MIN_TOKEN_LENGTH} characters each, separated by "
                "commas, or JSON lines {id, sha256, cameras} as `plateflow ingest token add` "
                "writes them"
            )
            raise ValueError(msg)
        digest = token_digest(token)
        out.append(IngestToken("shared-" + digest[:8], digest, None))
    return out


def _json_line(line: str, where: str) -> list[IngestToken]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}a JSON object {{id, sha256, cameras}} ({exc.msg})") from exc
    if not isinstance(entry, dict):
        raise ValueError(f"{where}a JSON object {{id, sha256, cameras}}")
    return [_entry(entry, where)]


def _entry(entry: dict[str, Any], where: str) -> IngestToken:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"{where}only the keys {sorted(_KEYS)} (not {unknown})")
    token_id = entry.get("id")
    if not isinstance(token_id, str) or not _ID.fullmatch(token_id):
        msg = f"{where}an id of 1-64 letters, digits and ._:@- (got {token_id!r})"
        raise ValueError(msg)
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _HEX.fullmatch(digest):
        raise ValueError(f"{where}sha256: the token's SHA-256 as 64 lower-case hex digits")
    cameras = entry.get("cameras")
    if (
        not isinstance(cameras, list)
        or not cameras
        or not all(isinstance(c, str) and 0 < len(c) <= _MAX_CAMERA for c in cameras)
    ):
        msg = f'{where}cameras: a non-empty list of camera ids (or ["*"] for any camera)'
        raise ValueError(msg)
    agent, created = entry.get("agent"), entry.get("created")
    if not (agent is None or isinstance(agent, str)) or not (
        created is None or isinstance(created, str)
    ):
        raise ValueError(f"{where}agent and created: text or null")
    allowed = None if ANY_CAMERA in cameras else frozenset(cameras)
    return IngestToken(token_id, digest, allowed, agent or None, created)


def _check_unique(tokens: list[IngestToken]) -> None:
    ids: set[str] = set()
    digests: set[str] = set()
    for t in tokens:
        if t.token_id in ids:
            raise ValueError(f"one line per token id ({t.token_id!r} is given twice)")
        if t.sha256 in digests:
            raise ValueError(f"one line per token (the token of {t.token_id!r} is given twice)")
        ids.add(t.token_id)
        digests.add(t.sha256)
