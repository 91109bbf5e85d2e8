"""The audit head exported off the database (427.5(a)): one JSON line per scheduled check.

``plateflow audit verify --scheduled`` appends the head it verified to a file opened with
``O_APPEND`` (ship it off the host: a log shipper, ``chattr +a``, a WORM bucket). Someone who
rewrites the database, even holding the audit key, cannot rewrite what already left the host:
every later check compares the chain with every exported head.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from records._audit import VerifyResult, canonical_json, iso_utc
from records._errors import AuditError
from records._schema import now_ms

__all__ = ["export_head", "exported_heads"]


def export_head(path: Path, result: VerifyResult, *, at_ms: int | None = None) -> dict[str, object]:
    """Append the head of a verified chain to ``path`` as one JSON line ``{seq, hash, hmac,
    key_id, at}`` and return it. The file is created 0600 and only ever appended to."""
    line: dict[str, object] = {
        "seq": result.head_seq,
        "hash": result.head_hash,
        "hmac": result.head_hmac,
        "key_id": result.head_key_id,
        "at": iso_utc(now_ms() if at_ms is None else at_ms),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (canonical_json(line) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def exported_heads(path: Path) -> dict[int, str]:
    """The heads exported to ``path`` so far, as anchors (sequence number -> hash); an absent
    file has none. A line that is not a head is an error naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    anchors: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            head = json.loads(line)
            seq, digest = int(head["seq"]), str(head["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path} line {number} is not an exported audit head: the file was altered"
            raise AuditError(msg) from exc
        if seq:
            anchors[seq] = digest
    return anchors
