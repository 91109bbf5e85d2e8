"""Password hashing (argon2id via argon2-cffi) and the password rules.

There is no default password anywhere in plateflow: every password is chosen by a person and
checked by :func:`password_problems`.
"""

from __future__ import annotations

import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from records._errors import WeakPasswordError

MIN_LENGTH = 12
PASSPHRASE_LENGTH = 20

_HASHER = PasswordHasher()

#: Words that make a password guessable however they are decorated with digits and symbols.
_COMMON = frozenset(
    {
        "password",
        "passw0rd",
        "qwerty",
        "qwertyuiop",
        "letmein",
        "welcome",
        "admin",
        "administrator",
        "changeme",
        "plateflow",
        "iloveyou",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "trustno1",
        "abc",
        "abcdef",
        "secret",
        "police",
        "sheriff",
    }
)


@functools.cache
def dummy_hash() -> str:
    """A valid hash of a random string: verified against when the username is unknown, so that
    a failed login takes the same time whether or not the user exists. Made on first use, with
    the hasher's parameters: every process that imports ``records`` (each CLI command) would
    otherwise pay for a hash it may never check."""
    return _HASHER.hash("plateflow-timing-equaliser-not-a-password")


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """What is wrong with ``password`` (empty when it is acceptable).

    Rules: at least 12 characters; three of lower-case, upper-case, digits and symbols unless it
    is a passphrase of 20 or more; not built on a common word or the username; not one repeated
    character.
    """
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"is shorter than {MIN_LENGTH} characters")
    classes = sum(
        bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")
    )
    if classes < 3 and len(password) < PASSPHRASE_LENGTH:
        problems.append(
            "needs three of lower-case letters, upper-case letters, digits and symbols "
            f"(or be a passphrase of {PASSPHRASE_LENGTH} or more characters)"
        )
    letters = re.sub(r"[^a-z]", "", password.lower())
    if letters in _COMMON or password.lower() in _COMMON:
        problems.append("is a common password with decorations")
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append("contains the username")
    if password and len(set(password)) <= 2:
        problems.append("repeats one or two characters")
    return problems


def check_password_strength(password: str, *, username: str | None = None) -> None:
    """Raise :class:`WeakPasswordError` listing every rule ``password`` breaks."""
    problems = password_problems(password, username=username)
    if problems:
        raise WeakPasswordError("password refused: it " + "; it ".join(problems))


def hash_password(password: str) -> str:
    """An argon2id hash with a fresh salt."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for a malformed hash)."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
