"""What the agency posts publicly (policy 427.2.1(e)(g)): its ALPR policy and the people who
answer for the system.

The policy is published as versions (Markdown text or a PDF, kept as the bytes given, with
their sha256 and the date they take effect); the designees are the ALPR administrator and the
custodian of records, each a title and a name since a date. Both are append-only rows (a new
version or a new designation never replaces an old one) written with their audit record in
one transaction, and every row names who recorded it. Who recorded it is kept for the audit,
never shown on the public page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._audit import append_audit
from records._errors import NotFoundError, RecordsError
from records._schema import (
    audit_head,
    connection,
    now_ms,
    policy_documents,
    record_from_row,
    transparency_designees,
    write_tx,
)

__all__ = [
    "DESIGNEE_ROLES",
    "POLICY_MEDIA_TYPES",
    "Designee",
    "PolicyDocument",
    "current_designees",
    "designate",
    "list_designees",
    "list_policies",
    "policy_document",
    "policy_media_type",
    "publish_policy",
]

#: The public roles (427.2.1(e): the designee overseeing the ALPR operation; 427.7: the
#: custodian of records who answers release requests) and how the page names them.
DESIGNEE_ROLES: Mapping[str, str] = {
    "administrator": "ALPR administrator",
    "custodian": "Custodian of records",
}
#: What a policy document may be, by file suffix.
POLICY_MEDIA_TYPES: Mapping[str, str] = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": "application/pdf",
}
#: A policy is a document, not an archive: 20 MB is far above any agency's policy manual.
MAX_POLICY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class PolicyDocument:
    """One published version of the policy (``content`` only when asked for)."""

    version: int
    title: str
    media_type: str
    sha256: str
    size: int
    effective_on: date
    published_by: str
    published_at_ms: int
    content: bytes | None = None


@dataclass(frozen=True)
class Designee:
    """Who holds a public role, since when, and who recorded it."""

    role: str
    title: str
    name: str
    since: date
    recorded_by: str
    recorded_at_ms: int

    @property
    def role_title(self) -> str:
        return DESIGNEE_ROLES.get(self.role, self.role)


def policy_media_type(filename: str) -> str:
    """The media type of a policy file by its suffix; raises RecordsError for another kind."""
    suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
    found = POLICY_MEDIA_TYPES.get(suffix)
    if found is None:
        kinds = ", ".join(sorted(POLICY_MEDIA_TYPES))
        raise RecordsError(f"policy file {filename!r} is not Markdown or PDF; give one of {kinds}")
    return found


def _check_content(content: bytes, media_type: str) -> str | None:
    """The Markdown's text (or None for a PDF); refuses empty, oversized or mistyped bytes."""
    if not content.strip():
        raise RecordsError("the policy document is empty; give the file of the written policy")
    if len(content) > MAX_POLICY_BYTES:
        msg = f"the policy document is {len(content):,} bytes; the limit is {MAX_POLICY_BYTES:,}"
        raise RecordsError(msg)
    if media_type == "application/pdf":
        if not content.startswith(b"%PDF-"):
            raise RecordsError("the policy file is named .pdf but is not a PDF (no %PDF- header)")
        return None
    if media_type != "text/markdown":
        raise RecordsError(f"policy media type {media_type!r} is not text/markdown or a PDF")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordsError("the Markdown policy is not UTF-8 text; save it as UTF-8") from exc


def _title(text: str | None, given: str | None) -> str:
    if given and given.strip():
        return given.strip()[:256]
    for line in (text or "").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if heading:
                return heading[:256]
    raise RecordsError("give the policy a title (a PDF, or Markdown without a # heading)")


def _policy(row: Mapping[Any, Any], with_content: bool) -> PolicyDocument:
    content = bytes(row["content"]) if with_content else None
    return record_from_row(PolicyDocument, row, size=int(row["size"]), content=content)


def _policy_query(with_content: bool) -> sa.Select[Any]:
    columns = [c for c in policy_documents.c if with_content or c.name != "content"]
    size = sa.func.length(policy_documents.c.content).label("size")
    return sa.select(*columns, size).order_by(policy_documents.c.version)


def publish_policy(
    engine: Engine,
    content: bytes,
    *,
    media_type: str,
    effective_on: date,
    by: str,
    title: str | None = None,
    client: str | None = None,
) -> PolicyDocument:
    """Publish the next version of the policy (427.2.1(g)); versions count from 1."""
    text = _check_content(content, media_type)
    heading = _title(text, title)
    at = now_ms()
    digest = hashlib.sha256(content).hexdigest()
    with write_tx(engine) as conn:
        # Two administrators publishing at once take turns on the audit head's lock (SQLite:
        # the write transaction), so both do not take the same next version.
        conn.execute(sa.select(audit_head.c.seq).with_for_update())
        last = conn.execute(sa.select(sa.func.max(policy_documents.c.version))).scalar()
        version = int(last or 0) + 1
        conn.execute(
            sa.insert(policy_documents).values(
                version=version,
                title=heading,
                media_type=media_type,
                content=content,
                sha256=digest,
                effective_on=effective_on,
                published_by=by,
                published_at=at,
            )
        )
        append_audit(
            conn,
            username=by,
            action="transparency.publish",
            kind="admin",
            client=client,
            at_ms=at,
            terms={
                "version": version,
                "title": heading,
                "media_type": media_type,
                "sha256": digest,
                "bytes": len(content),
                "effective_on": effective_on.isoformat(),
            },
        )
        row = conn.execute(
            _policy_query(False).where(policy_documents.c.version == version)
        ).mappings()
        return _policy(row.one(), False)


def list_policies(engine: Engine | Connection) -> list[PolicyDocument]:
    """Every published version, oldest first, without the content."""
    with connection(engine) as conn:
        return [_policy(r, False) for r in conn.execute(_policy_query(False)).mappings()]


def policy_document(engine: Engine, version: int | None = None) -> PolicyDocument:
    """One version (the newest when ``version`` is None) with its content; NotFoundError."""
    query = _policy_query(True)
    if version is None:
        query = query.order_by(None).order_by(policy_documents.c.version.desc()).limit(1)
    else:
        query = query.where(policy_documents.c.version == version)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        what = "no policy has been published" if version is None else f"no policy version {version}"
        raise NotFoundError(f"{what}; publish one with `plateflow transparency publish`")
    return _policy(row, True)


def designate(
    engine: Engine,
    *,
    role: str,
    title: str,
    name: str,
    since: date,
    by: str,
    client: str | None = None,
) -> Designee:
    """Record that ``name`` (``title``) holds ``role`` since ``since`` (427.2.1(e))."""
    if role not in DESIGNEE_ROLES:
        raise RecordsError(f"designee role {role!r} is not one of {', '.join(DESIGNEE_ROLES)}")
    missing = [n for n, v in (("title", title), ("name", name)) if not v or not v.strip()]
    if missing:
        raise RecordsError(f"a designee needs a {' and a '.join(missing)} (427.2.1(e))")
    at = now_ms()
    title, name = title.strip()[:128], name.strip()[:128]
    values: dict[str, Any] = {
        "role": role,
        "title": title,
        "name": name,
        "since": since,
        "recorded_by": by,
        "recorded_at": at,
    }
    with write_tx(engine) as conn:
        conn.execute(sa.insert(transparency_designees).values(**values))
        append_audit(
            conn,
            username=by,
            action="transparency.designate",
            kind="admin",
            client=client,
            at_ms=at,
            terms={
                "role": role,
                "title": title,
                "name": name,
                "since": since.isoformat(),
            },
        )
    return Designee(role, title, name, since, by, at)


def _designee(row: Mapping[Any, Any]) -> Designee:
    return Designee(
        row["role"], row["title"], row["name"], row["since"], row["recorded_by"], row["recorded_at"]
    )


def list_designees(engine: Engine | Connection) -> list[Designee]:
    """Every designation, oldest first."""
    query = sa.select(transparency_designees).order_by(transparency_designees.c.id)
    with connection(engine) as conn:
        return [_designee(r) for r in conn.execute(query).mappings()]


def current_designees(engine: Engine | Connection) -> dict[str, Designee | None]:
    """The newest designation of each role (None for a role never designated)."""
    current: dict[str, Designee | None] = dict.fromkeys(DESIGNEE_ROLES)
    for designee in list_designees(engine):
        current[designee.role] = designee
    return current
