"""The one door: who acts (:class:`Actor`), what they do (:class:`Act`), and how every act is
checked and audited (:class:`Door`), for the HTTP API and the CLI alike (427.3(c), 427.5(a)).

An actor is a user resolved from an open session, the justification they gave (a case number,
an event number or a description) and the client they act from. An act names its audit action,
the permission it needs, its audit kind and whether it touches ALPR data (then current training
and a justification are required too). The door runs an act in one of three ways:

* :meth:`Door.read` inside :func:`records.audited`: the checks run, and the ``allowed`` record
  with the result count is committed in the same transaction before any result is returned;
* :meth:`Door.scan` for a slow read of the Parquet store (a search): the checks run and the
  intent (``terms.stage`` ``intent``) is committed first, the scan then runs outside any
  database transaction (on SQLite a write transaction holds the one writer lock, and logins
  would queue behind a year-long search), and its outcome is a second record linking to the
  intent (``terms.intent`` = the intent's ``seq``) with the result count, or ``failed``;
* :meth:`Door.write` for a records change that audits itself: the checks run first, then the
  change, then the justified attempt is recorded with its real outcome;
* :meth:`Door.deny` for a refusal the act decides itself (a covert list, a bad value): audited
  as ``denied``, then raised by the caller.

A new act is an :class:`Act` and a function of ``(door, actor, ...)`` that calls one of these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypedDict, TypeVar

from sqlalchemy.engine import Engine

import records
from service._config import ServiceConfig
from service._covert import Covert
from service._errors import (
    Forbidden,
    ServiceError,
    Unauthenticated,
    from_access_denied,
    from_refusal,
)
from sinks import ReadStore

log = logging.getLogger(__name__)

__all__ = ["ANONYMOUS", "Act", "Actor", "Door", "Justification", "Outcome"]

T = TypeVar("T")

#: The username recorded for an attempt that carried no valid session.
ANONYMOUS = records.ANONYMOUS


@dataclass(frozen=True)
class Justification:
    """Why the data is needed (427.3(c)): a case number, an event number, or a description."""

    case_number: str | None = None
    event_number: str | None = None
    description: str | None = None

    def as_kwargs(self) -> JustificationKwargs:
        return {
            "case_number": self.case_number,
            "event_number": self.event_number,
            "description": self.description,
        }


class JustificationKwargs(TypedDict):
    """A :class:`Justification` as the keywords of the records functions that store one."""

    case_number: str | None
    event_number: str | None
    description: str | None


@dataclass(frozen=True)
class Act:
    """One kind of act: its audit action, the permission it needs (a tuple: the first one the
    actor holds, the act then narrows what a weaker one may do), its audit kind, and whether
    it is an access to ALPR data (training and justification required)."""

    action: str
    permission: str | tuple[str, ...]
    kind: str = "inquiry"
    data_access: bool = True

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.permission,) if isinstance(self.permission, str) else self.permission

    def permission_for(self, user: records.User) -> str:
        return next((p for p in self.permissions if user.can(p)), self.permissions[0])


@dataclass
class Outcome:
    """What a :meth:`Door.scan` records when its work is done: the terms (set ``total`` and
    the like here) and the result count."""

    terms: dict[str, Any]
    result_count: int | None = None


@dataclass(frozen=True)
class Actor:
    """An authenticated user acting with a justification from a client. ``origin`` is where
    the act came from (the API's path and query, the CLI's command), kept in the audit terms."""

    user: records.User
    why: Justification = field(default_factory=Justification)
    client: str | None = None
    origin: Mapping[str, Any] = field(default_factory=dict)

    @property
    def username(self) -> str:
        return self.user.username

    def can(self, permission: str) -> bool:
        return self.user.can(permission)

    @property
    def covert(self) -> Covert:
        """What of covert lists this actor may see (427.6)."""
        return Covert.of(self.user)

    @property
    def inquiry(self) -> records.Inquiry:
        return records.Inquiry(self.user.username, **self.why.as_kwargs())


class Door:
    """The records database, the read store, the optional Redis client (alert bus, hotlist
    notices) and the narrow config, and the checked, audited way every act runs."""

    def __init__(
        self, engine: Engine, config: ServiceConfig, *, redis: Any = None, redis_async: Any = None
    ) -> None:
        self.engine = engine
        self.config = config
        self.redis = redis
        #: A ``redis.asyncio`` client for the alert stream's blocking reads (API only).
        self.redis_async = redis_async

    @classmethod
    def open(
        cls,
        database_url: str,
        config: ServiceConfig,
        *,
        redis: Any = None,
        redis_async: Any = None,
        engine: Engine | None = None,
    ) -> Door:
        """A door on the records database at ``database_url`` (tables created if missing) with
        the config's audit keys, or on ``engine`` when one is given."""
        if engine is None:
            engine = records.connect(
                database_url, audit_key=config.audit_key, retired_audit_keys=config.audit_keys
            )
        return cls(engine, config, redis=redis, redis_async=redis_async)

    @cached_property
    def store(self) -> ReadStore:
        return ReadStore(self.config.data_dir, self.config.retention_days)

    # -- who ------------------------------------------------------------------------------------

    def enter(
        self,
        act: Act,
        token: str | None,
        *,
        why: Justification = Justification(),
        client: str | None = None,
        origin: Mapping[str, Any] | None = None,
        login_hint: str = "log in first",
    ) -> Actor:
        """The actor of an open session ``token``, checked for ``act`` before it runs: the
        session (else :class:`Unauthenticated`), the permission, training and justification
        (else the matching :class:`ServiceError`). Every refusal is audited."""
        terms = dict(origin or {})
        if not token:
            self.record_attempt(
                ANONYMOUS,
                act.action,
                act.kind,
                "denied",
                f"no_login: {login_hint}",
                terms,
                client,
                why,
            )
            raise Unauthenticated(login_hint, reason="no_login")
        try:
            user = self.session_user(token)
        except Unauthenticated as exc:
            self.record_attempt(
                ANONYMOUS, act.action, act.kind, "denied", f"session: {exc}", terms, client, why
            )
            raise
        actor = Actor(user, why, client, terms)
        restriction = records.session_restriction(user, totp_required=self.config.totp_required)
        if restriction is not None:
            raise self.deny(actor, act, Forbidden(restriction, reason="account_setup"))
        self.admit(actor, act)
        return actor

    def session_user(self, token: str) -> records.User:
        """The user of an open session, even one that must change its password or enrol its
        second factor first (no act, no audit: ``me``, those two acts). Raises
        :class:`Unauthenticated` (an expired or idle session is deleted)."""
        try:
            return records.resolve_session(self.engine, token, idle_s=self.config.session_idle_s)
        except records.SessionError as exc:
            raise Unauthenticated(str(exc), reason="session") from exc

    def admit(self, actor: Actor, act: Act) -> None:
        """Check ``act`` for ``actor`` (permission, and for data: training, justification);
        a refusal is audited and raised as a :class:`ServiceError`."""
        try:
            records.check_inquiry(
                self.engine,
                actor.inquiry,
                act.permission_for(actor.user),
                data_access=act.data_access,
                min_description_length=self.config.min_description_length,
            )
        except records.AccessDenied as exc:
            message = str(exc)
            if exc.reason == "forbidden" and len(act.permissions) > 1:
                message += f" (any of {', '.join(act.permissions)} is needed)"
            raise self.deny(actor, act, from_refusal(message, exc.reason, exc.field)) from exc

    # -- how ------------------------------------------------------------------------------------

    @contextmanager
    def audited(
        self, actor: Actor, act: Act, terms: Mapping[str, Any] | None = None
    ) -> Iterator[records.AuditedAccess]:
        """:func:`records.audited` for ``actor``: set ``access.result_count`` in the block."""
        try:
            with records.audited(
                self.engine,
                actor.inquiry,
                act.action,
                permission=act.permission_for(actor.user),
                terms={**actor.origin, **(terms or {})},
                client=actor.client,
                kind=act.kind,
                data_access=act.data_access,
                min_description_length=self.config.min_description_length,
            ) as access:
                yield access
        except records.AccessDenied as exc:
            raise from_access_denied(exc) from exc

    def read(
        self,
        actor: Actor,
        act: Act,
        fn: Callable[[records.AuditedAccess], T],
        terms: Mapping[str, Any] | None = None,
    ) -> T:
        """Run ``fn`` inside :meth:`audited`; ``fn`` sets ``access.result_count``."""
        with self.audited(actor, act, terms) as access:
            return fn(access)

    def scan(
        self,
        actor: Actor,
        act: Act,
        fn: Callable[[Outcome], T],
        terms: Mapping[str, Any] | None = None,
    ) -> T:
        """Record the intent of ``act`` (checked and committed), run ``fn`` outside any
        database transaction, then record its outcome linked to the intent: ``allowed`` with
        ``outcome.result_count`` and ``outcome.terms``, or ``failed`` with the error. Nothing
        is returned before the outcome record is committed."""
        asked = {**(terms or {}), "stage": "intent"}
        with self.audited(actor, act, asked) as access:
            pass  # the intent: committed here, before the store is read
        assert access.record is not None
        outcome = Outcome({**(terms or {}), "stage": "result", "intent": access.record.seq})
        try:
            result = fn(outcome)
        except BaseException as exc:
            self._outcome(actor, act, exc, {**actor.origin, **outcome.terms})
            raise
        terms_done = {**actor.origin, **outcome.terms}
        self._outcome(actor, act, None, terms_done, result_count=outcome.result_count)
        return result

    def read_all(
        self,
        actor: Actor,
        act: Act,
        fetch: Callable[[], list[T]],
        terms: Mapping[str, Any] | None = None,
    ) -> list[T]:
        """:meth:`read` of a list: the audit record's ``result_count`` is its length."""

        def run(access: records.AuditedAccess) -> list[T]:
            found = fetch()
            access.result_count = len(found)
            return found

        return self.read(actor, act, run, terms)

    def write(
        self,
        actor: Actor,
        act: Act,
        fn: Callable[[], T],
        terms: Mapping[str, Any] | None = None,
    ) -> T:
        """Check, run a records change (which audits itself atomically), then record the
        justified attempt with its outcome, ``allowed`` or ``failed``."""
        self.admit(actor, act)
        all_terms = {**actor.origin, **(terms or {})}
        try:
            result = fn()
        except (records.RecordsError, ServiceError) as exc:
            self._outcome(actor, act, exc, all_terms)
            raise
        self._outcome(actor, act, None, all_terms)
        return result

    def _outcome(
        self,
        actor: Actor,
        act: Act,
        error: BaseException | None,
        terms: Mapping[str, Any],
        *,
        result_count: int | None = None,
    ) -> None:
        """Record how an act that ran came out: ``failed`` with ``error``, else ``allowed``."""
        self.record_attempt(
            actor.username,
            act.action,
            act.kind,
            "failed" if error is not None else "allowed",
            f"{error.__class__.__name__}: {error}" if error is not None else None,
            terms,
            actor.client,
            actor.why,
            result_count=result_count,
        )

    def deny(self, actor: Actor, act: Act, error: ServiceError) -> ServiceError:
        """Audit a refusal the act decided (a covert list, a weaker role, a bad value) and
        return the error to raise."""
        reason = f"{error.reason}: {error}"
        self.record_attempt(
            actor.username,
            act.action,
            act.kind,
            "denied",
            reason,
            actor.origin,
            actor.client,
            actor.why,
        )
        return error

    def checked(self, actor: Actor, act: Act, build: Callable[[], T]) -> T:
        """Build a query; a bad value is a refusal, audited as such, raised with its field."""
        try:
            return build()
        except ServiceError as exc:
            raise self.deny(actor, act, exc) from exc

    def record_attempt(
        self,
        username: str,
        action: str,
        kind: str,
        outcome: str,
        reason: str | None,
        terms: Mapping[str, Any],
        client: str | None,
        why: Justification | None = None,
        *,
        result_count: int | None = None,
    ) -> None:
        """Append one audit record in its own transaction (refusals, outcomes of changes and
        of scans, requests refused for their shape, the close of an alert stream). An
        anonymous refusal is aggregated per client (:func:`records.note_anonymous`), so a flood
        cannot grow the audit log without bound."""
        said = (why or Justification()).as_kwargs()
        if username == ANONYMOUS and outcome != "allowed":
            records.note_anonymous(
                self.engine,
                action=action,
                kind=kind,
                outcome=outcome,
                reason=reason,
                client=client,
                interval_s=self.config.anonymous_audit_interval_s,
                terms=terms,
                **said,
            )
            return
        with self.engine.begin() as conn:
            records.append_audit(
                conn,
                username=username[:64],
                action=action,
                kind=kind,
                outcome=outcome,
                reason=reason[:1000] if reason else None,
                terms=terms,
                client=client,
                result_count=result_count,
                **said,
            )
