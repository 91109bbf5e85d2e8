"""The signature of an evidence manifest (427.4, 427.5(a)).

The manifest lists the SHA-256 of every file and the custody chain hashes the manifest, but
anyone can recompute those hashes after changing a file. ``manifest.sig`` therefore holds an
HMAC-SHA256 of the manifest's SHA-256 under the audit key (the keys of the audit log, named by
id, so a rotated key still verifies), and the export's audit record carries the same digest:
a manifest rewritten without the key fails verification, and the audit log says which manifest
was exported.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

import records
from sinks import EVIDENCE_SIGNATURE as SIGNATURE
from sinks import open_private

__all__ = ["SIGNATURE", "manifest_problem", "sign_manifest"]

#: Written beside ``manifest.json`` in every export.
_FORMAT = "plateflow-evidence-signature/1"


def _message(digest: str) -> str:
    return f"evidence-manifest\n{digest}"


def _digest(directory: Path) -> str:
    return hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()


def sign_manifest(keys: records.AuditKeys, directory: Path) -> dict[str, Any]:
    """Write ``manifest.sig`` for the manifest in ``directory`` and return it (the manifest's
    SHA-256, the key id, the HMAC)."""
    digest = _digest(directory)
    key, mac = keys.sign(_message(digest))
    signature = {"format": _FORMAT, "manifest_sha256": digest, "key_id": key, "hmac": mac}
    with open_private(directory / SIGNATURE, "xb") as handle:  # never overwrite evidence
        handle.write(orjson.dumps(signature, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        handle.flush()
        os.fsync(handle.fileno())
    return signature


def manifest_problem(keys: records.AuditKeys, directory: Path) -> str | None:
    """Why the manifest in ``directory`` is not the one plateflow signed, or None."""
    path = directory / SIGNATURE
    try:
        signature = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return f"{SIGNATURE} is missing: the manifest is not signed"
    except orjson.JSONDecodeError:
        return f"{SIGNATURE} is not valid JSON: the signature was altered"
    if not isinstance(signature, dict):
        return f"{SIGNATURE} is not a signature: it was altered"
    digest = _digest(directory)
    if signature.get("manifest_sha256") != digest:
        return f"manifest.json differs from the one signed in {SIGNATURE} (manifest altered)"
    why = keys.problem(signature.get("key_id"), _message(digest), signature.get("hmac"))
    return None if why is None else f"{SIGNATURE}: {why}"
