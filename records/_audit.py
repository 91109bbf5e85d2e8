"""The append-only, hash-chained audit log (policy 427.5(a), Civil Code 1798.90.52).

Each record holds the time (UTC), the user (username, name, agency), the action, the query terms,
the case/event number or description, the result count, the client address and the outcome, plus
``prev_hash`` and ``hash = sha256(canonical JSON of every other field, seq included)``. Records
are appended inside the caller's transaction, so an operation and its audit record commit
together or not at all. Appending locks the one-row ``audit_head`` table, which serialises
writers and gives every record the next sequence number.

What the chain proves: :func:`verify_chain` finds a record whose content was edited, a record
that was deleted (a gap, or a shorter chain than the head says), and a record inserted outside
the chain or that does not link to its predecessor. Someone who can write the database and
recomputes every later hash and the head can rewrite history undetected; compare the head with
an anchor kept elsewhere (every quarterly report prints the head) via ``anchors=``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from records._errors import AuditError
from records._schema import GENESIS_HASH, audit_head, audit_log, in_window, now_ms, users

OUTCOMES = ("allowed", "denied", "failed")
KINDS = ("inquiry", "login", "admin", "hotlist", "release", "alert", "retention")

#: The fields covered by the hash, in the order they are shown.
HASHED_FIELDS = (
    "seq",
    "ts_ms",
    "ts",
    "kind",
    "username",
    "user_name",
    "agency",
    "action",
    "terms",
    "case_number",
    "event_number",
    "description",
    "result_count",
    "client",
    "outcome",
    "reason",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text; dates and other objects as their ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(fields: Mapping[Any, Any]) -> str:
    """sha256 hex over the canonical serialisation of the hashed fields of one record."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def iso_utc(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC with milliseconds: ``2026-10-01T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class AuditRecord:
    """One audit record as stored (``terms`` decoded from its canonical JSON)."""

    seq: int
    ts_ms: int
    ts: str
    kind: str
    username: str
    user_name: str
    agency: str
    action: str
    terms: dict[str, Any]
    case_number: str | None
    event_number: str | None
    description: str | None
    result_count: int | None
    client: str | None
    outcome: str
    reason: str | None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AuditRecord:
        values = dict(row)
        values["terms"] = json.loads(values["terms"])
        return cls(**values)


def append_audit(
    conn: Connection,
    *,
    username: str,
    action: str,
    kind: str,
    outcome: str = "allowed",
    reason: str | None = None,
    terms: Mapping[str, Any] | None = None,
    case_number: str | None = None,
    event_number: str | None = None,
    description: str | None = None,
    result_count: int | None = None,
    client: str | None = None,
    at_ms: int | None = None,
) -> AuditRecord:
    """Append one record in the transaction of ``conn`` and return it.

    The user's name and agency are looked up by username (a name that is no user, such as
    ``os:root`` from the command line, is recorded as given, with an empty agency). Raises
    :class:`AuditError` if the record cannot be written; the caller's transaction must then
    be rolled back, which ``with`` blocks do.
    """
    if outcome not in OUTCOMES:
        raise AuditError(f"audit outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if kind not in KINDS:
        raise AuditError(f"audit kind {kind!r} is not one of {', '.join(KINDS)}")
    try:
        # Update first: on SQLite this takes the write lock, on PostgreSQL the row lock, before
        # the head is read, so two writers can never take the same sequence number.
        conn.execute(
            sa.update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1)
        )
        head = conn.execute(
            sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        person = conn.execute(
            sa.select(users.c.name, users.c.agency).where(users.c.username == username)
        ).first()
        ts_ms = now_ms() if at_ms is None else at_ms
        fields: dict[str, Any] = {
            "seq": int(head.seq),
            "ts_ms": ts_ms,
            "ts": iso_utc(ts_ms),
            "kind": kind,
            "username": username[:64],
            "user_name": person.name if person else username[:128],
            "agency": person.agency if person else "",
            "action": action[:64],
            "terms": canonical_json(dict(terms or {})),
            "case_number": case_number,
            "event_number": event_number,
            "description": description,
            "result_count": result_count,
            "client": client[:64] if client else None,
            "outcome": outcome,
            "reason": reason,
            "prev_hash": head.hash,
        }
        fields["hash"] = record_hash(fields)
        conn.execute(sa.insert(audit_log).values(**fields))
        conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(hash=fields["hash"]))
    except sa.exc.SQLAlchemyError as exc:
        msg = (
            f"the audit record for {action!r} by {username!r} could not be written, so the "
            f"operation is refused: {exc.__class__.__name__}: {exc}"
        )
        raise AuditError(msg) from exc
    return AuditRecord.from_row(fields)


def read_audit(
    engine: Engine,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    username: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Audit records in sequence order, filtered by time ``[start_ms, end_ms)``, user and kind."""
    query = in_window(
        sa.select(audit_log).order_by(audit_log.c.seq), audit_log.c.ts_ms, start_ms, end_ms
    )
    if username is not None:
        query = query.where(audit_log.c.username == username)
    if kind is not None:
        query = query.where(audit_log.c.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [AuditRecord.from_row(row) for row in conn.execute(query).mappings()]


# -- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    """One finding: ``kind`` is edited, deleted, inserted, unlinked or anchor."""

    seq: int
    kind: str
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_chain`."""

    records: int
    head_seq: int
    head_hash: str
    problems: tuple[ChainProblem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def seqs(self, kind: str) -> list[int]:
        """Sequence numbers of the problems of one kind (``edited``, ``deleted``, ...)."""
        return [p.seq for p in self.problems if p.kind == kind]

    @property
    def edited(self) -> list[int]:
        return self.seqs("edited")

    @property
    def deleted(self) -> list[int]:
        return self.seqs("deleted")

    @property
    def inserted(self) -> list[int]:
        return self.seqs("inserted")

    def describe(self) -> str:
        """One paragraph for an operator."""
        if self.ok:
            return (
                f"audit chain intact: {self.records} records, head {self.head_seq} "
                f"hash {self.head_hash}"
            )
        lines = [f"audit chain BROKEN: {len(self.problems)} problem(s) in {self.records} records"]
        lines += [f"  record {p.seq}: {p.kind}: {p.detail}" for p in self.problems[:200]]
        if len(self.problems) > 200:
            lines.append(f"  ... and {len(self.problems) - 200} more")
        return "\n".join(lines)


def _iter_rows(conn: Connection, batch: int) -> Iterator[Mapping[Any, Any]]:
    last: int | None = None
    while True:
        query = sa.select(audit_log).order_by(audit_log.c.seq).limit(batch)
        if last is not None:
            query = query.where(audit_log.c.seq > last)
        rows = list(conn.execute(query).mappings())
        if not rows:
            return
        yield from rows
        last = rows[-1]["seq"]


#: A run of missing records longer than this is one finding (its first number, the range in
#: the detail), so a head or a record numbered 10**15 cannot make verification unbounded.
MAX_LISTED_GAP = 1000


def _deleted(start: int, end: int, why: str) -> list[ChainProblem]:
    if end - start + 1 > MAX_LISTED_GAP:
        detail = f"{why}: records {start} to {end} ({end - start + 1:,} records) are missing"
        return [ChainProblem(start, "deleted", detail)]
    return [ChainProblem(seq, "deleted", why) for seq in range(start, end + 1)]


def verify_chain(
    engine: Engine, *, anchors: Mapping[int, str] | None = None, batch: int = 5000
) -> VerifyResult:
    """Walk the whole audit log and report every edited, deleted and inserted record. Time
    and memory grow with the records stored, never with the numbers the head or a record
    claims: a run of more than :data:`MAX_LISTED_GAP` missing records is one finding.

    ``anchors`` maps sequence numbers to hashes recorded elsewhere (a printed report); a record
    whose hash differs from its anchor was rewritten even if the chain is consistent.
    """
    problems: list[ChainProblem] = []
    with engine.connect() as conn:
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).first()
        head_seq, head_hash = (int(head.seq), str(head.hash)) if head else (0, GENESIS_HASH)
        expected, prev_hash, count, last_hash = 1, GENESIS_HASH, 0, GENESIS_HASH
        for row in _iter_rows(conn, batch):
            count += 1
            seq = int(row["seq"])
            if seq < 1 or seq > head_seq:
                where = "before the first record" if seq < 1 else f"after the head ({head_seq})"
                problems.append(ChainProblem(seq, "inserted", f"record numbered {where}"))
                continue
            gap = seq > expected
            if gap:
                problems += _deleted(expected, seq - 1, f"missing between {expected - 1} and {seq}")
            if record_hash(row) != row["hash"]:
                problems.append(ChainProblem(seq, "edited", "content does not match its hash"))
            elif row["prev_hash"] != prev_hash and not gap:
                problems.append(
                    ChainProblem(
                        seq,
                        "unlinked",
                        f"does not link to record {seq - 1}: one of them was inserted or replaced",
                    )
                )
            if anchors and seq in anchors and anchors[seq] != row["hash"]:
                problems.append(
                    ChainProblem(seq, "anchor", "hash differs from the recorded anchor")
                )
            prev_hash, last_hash, expected = row["hash"], row["hash"], seq + 1
    if expected - 1 < head_seq:
        problems += _deleted(expected, head_seq, f"missing at the end (the head is {head_seq})")
    elif head_seq and last_hash != head_hash:
        problems.append(ChainProblem(head_seq, "unlinked", "last record does not match the head"))
    if anchors:
        for seq in sorted(anchors):
            if seq > head_seq:
                problems.append(ChainProblem(seq, "anchor", "anchored record is beyond the head"))
    problems.sort(key=lambda p: (p.seq, p.kind))
    return VerifyResult(
        records=count, head_seq=head_seq, head_hash=head_hash, problems=tuple(problems)
    )
