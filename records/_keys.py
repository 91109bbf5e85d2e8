"""The audit keys: HMAC-SHA256 keys kept outside the database (427.5(a)).

The audit log's SHA-256 chain shows a record edited or removed, but anyone who can write the
database can also append well-formed records and recompute the hashes. Each record and each head
is therefore also signed with HMAC-SHA256 under a key the database never holds: someone with
plain DML (or even the database owner) cannot forge a signature without the key.

A key is a secret of at least 32 characters. Its id is derived from the key itself (an HMAC of
a fixed label), so a key and its id cannot be mixed up and rotating is only: make a new key the
current one and keep the old one among the retired keys, which verification still accepts.
Every record names the id of the key that signed it.

With nothing configured, :func:`generated_key` creates a random key in a file beside the SQLite
database (mode 0600), so a single-host install works out of the box.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from records._errors import AuditError

__all__ = ["ENGINE_OPTION", "KEY_FILE", "MIN_KEY_LENGTH", "AuditKeys", "generated_key", "key_id"]

log = logging.getLogger(__name__)

#: The key file created beside a SQLite database when no key is configured.
KEY_FILE = "audit.key"
MIN_KEY_LENGTH = 32
#: The engine execution option under which :func:`records.connect` attaches the keys.
ENGINE_OPTION = "plateflow_audit_keys"
_ID_LABEL = b"plateflow audit key id"


def key_id(key: str) -> str:
    """The public id of ``key``: ``k`` and 16 hex digits of an HMAC of a fixed label."""
    return "k" + hmac.new(key.encode(), _ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _checked(key: str, what: str) -> str:
    key = key.strip()
    if len(key) < MIN_KEY_LENGTH:
        msg = (
            f"the {what} is {len(key)} characters; an audit key needs at least "
            f"{MIN_KEY_LENGTH} (make one with `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )
        raise AuditError(msg)
    return key


@dataclass(frozen=True)
class AuditKeys:
    """The current signing key (None: this process may verify but not append) and every key
    verification accepts, by id. The keys never appear in ``repr``."""

    current: str | None
    keys: Mapping[str, str] = field(repr=False)

    @classmethod
    def of(cls, current: str | None, retired: Iterable[str] = ()) -> AuditKeys:
        """Keys from secrets: ``current`` signs, ``current`` and ``retired`` verify."""
        ring = {key_id(k): k for k in (_checked(k, "retired audit key") for k in retired)}
        current_id = None
        if current is not None:
            key = _checked(current, "audit key")
            current_id = key_id(key)
            ring[current_id] = key
        return cls(current_id, ring)

    def signing_id(self) -> str:
        """The id of the current key; refused when there is none."""
        if self.current is None:
            msg = (
                "no audit key is configured, so nothing can be recorded: set "
                "PLATEFLOW_AUDIT_KEY_FILE (or PLATEFLOW_AUDIT_KEY) to the same secret on every "
                "host that writes the records database"
            )
            raise AuditError(msg)
        return self.current

    def sign(self, message: str) -> tuple[str, str]:
        """``(key id, HMAC-SHA256 hex)`` of ``message`` under the current key."""
        current = self.signing_id()
        return current, self.mac(current, message)

    def mac(self, key: str, message: str) -> str:
        """HMAC-SHA256 hex of ``message`` under the key with id ``key``."""
        digest = hmac.new(self.keys[key].encode(), message.encode(), hashlib.sha256)
        return digest.hexdigest()

    def problem(self, key: str | None, message: str, mac: str | None) -> str | None:
        """Why ``mac`` is not a signature of ``message`` under key ``key``, or None if it is."""
        if not key or not mac:
            return "not signed with an audit key"
        if key not in self.keys:
            return (
                f"signed with key {key}, which is not configured (add it to "
                "PLATEFLOW_AUDIT_KEYS_FILE, the retired keys)"
            )
        if not hmac.compare_digest(self.mac(key, message), mac):
            return f"HMAC does not match under key {key}: written without the key"
        return None


def generated_key(path: Path) -> str:
    """The key in ``path``, created (random, mode 0600) if the file does not exist. Processes
    starting together agree: the key is written to a private file first and linked into place,
    so nobody reads a half-written key and the first link wins."""
    if not path.exists():
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        else:
            log.warning(
                "generated the audit signing key %s (mode 0600); keep a copy off this host, "
                "and set PLATEFLOW_AUDIT_KEY_FILE in production",
                path,
            )
        finally:
            temp.unlink()
    if path.stat().st_mode & 0o077:
        msg = f"the audit key file {path} is readable by other users; chmod 600 it"
        raise AuditError(msg)
    return path.read_text(encoding="utf-8").strip()
