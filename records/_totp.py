"""The optional second factor: time-based one-time codes (TOTP, RFC 6238, via pyotp).

The secret is stored encrypted (Fernet: AES-128-CBC and HMAC-SHA256) under a key that is not in
the database (``PLATEFLOW_TOTP_KEY`` or ``PLATEFLOW_TOTP_KEY_FILE``), so a reader of the
database alone cannot compute codes. The secret leaves the system once, in the provisioning URI
that enrolment returns; it is never logged, audited or returned again. A code is good once:
the time step of the last accepted code is kept, and only a later step is accepted.

:data:`SEARCH_PERMISSIONS` are the permissions that read stored plates; with the setting
``PLATEFLOW_TOTP_REQUIRED`` a user holding one of them acts only after enrolling.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pyotp
from cryptography.fernet import Fernet, InvalidToken

from records._errors import AuthError, ConflictError
from records._roles import Permission

ISSUER = "plateflow"
#: Codes one step (30 s) either side of the server's clock are accepted (clock drift).
VALID_WINDOW = 1
SEARCH_PERMISSIONS = frozenset({Permission.READS_SEARCH, Permission.READS_CANVASS})

NO_KEY = (
    "two-factor login needs a key kept outside the database: set PLATEFLOW_TOTP_KEY or "
    "PLATEFLOW_TOTP_KEY_FILE (32 or more random characters) for the API and the CLI"
)


def _fernet(key: str | None) -> Fernet:
    if not key:
        raise ConflictError(NO_KEY)
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def new_secret(key: str | None) -> tuple[str, str]:
    """A fresh base32 secret and its stored (encrypted) form."""
    secret = pyotp.random_base32()
    return secret, _fernet(key).encrypt(secret.encode()).decode()


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _secret(stored: str, key: str | None) -> str:
    try:
        return _fernet(key).decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        msg = "the stored TOTP secret does not open with PLATEFLOW_TOTP_KEY (key changed?)"
        raise AuthError(msg) from exc


def accepted_step(
    stored: str, code: str | None, key: str | None, *, at_ms: int | None = None
) -> int | None:
    """The time step ``code`` is valid for (within :data:`VALID_WINDOW`), or None."""
    digits = (code or "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit()):
        return None
    totp = pyotp.TOTP(_secret(stored, key))
    at = (time.time() if at_ms is None else at_ms / 1000) // totp.interval
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = int(at) + offset
        if pyotp.utils.strings_equal(totp.generate_otp(step), digits):
            return step
    return None
