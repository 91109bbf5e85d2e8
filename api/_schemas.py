"""Request and response models (the OpenAPI document is built from them) and their builders.

Times go out as RFC 3339 UTC text (``2026-11-28T12:00:00.000Z``); calendar dates as dates.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Self

from pydantic import BaseModel, Field

import service

__all__ = [
    "ActIn",
    "AlertLogEntry",
    "AlertLogOut",
    "AlertsOut",
    "AuditOut",
    "AuditRecordOut",
    "ChainProblemOut",
    "ChangeOut",
    "DecisionIn",
    "DisableIn",
    "EntryIn",
    "EntryOut",
    "EntryRemovedOut",
    "ErrorBody",
    "HealthResponse",
    "HotlistDetailOut",
    "HotlistIn",
    "HotlistOut",
    "LoginIn",
    "LoginOut",
    "OwnPasswordIn",
    "PasswordIn",
    "PolicyCostOut",
    "PolicyIn",
    "RecordOut",
    "ReleaseIn",
    "ReleaseOut",
    "RolesIn",
    "TotpCodeIn",
    "TotpIn",
    "TotpOut",
    "TrainingIn",
    "TrainingOut",
    "UserDetailOut",
    "UserIn",
    "UserOut",
    "VerifyOut",
    "iso",
]


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds -> RFC 3339 UTC text with milliseconds (None stays None)."""
    return None if ms is None else service.iso_utc(ms)


class RecordOut(BaseModel):
    """A response that mirrors a record dataclass of ``service``.

    ``of`` copies every field of the same name, and a time field ``x`` from the record's epoch
    milliseconds ``x_ms`` (as RFC 3339 text); a subclass passes what it computes as keywords.
    """

    @classmethod
    def of(cls, record: Any, **computed: Any) -> Self:
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            if name in computed:
                continue
            if hasattr(record, name):
                values[name] = getattr(record, name)
            elif hasattr(record, f"{name}_ms"):
                values[name] = iso(getattr(record, f"{name}_ms"))
        return cls(**values, **computed)


class ActIn(BaseModel):
    """A request body whose fields are named as the keyword parameters of its service act.

    ``args`` gives them as those keywords, shallow (a nested value is passed as it is), so a
    route hands the whole body to the act: ``service.add_entry(door, actor, name, **body.args())``.
    """

    def args(self) -> dict[str, Any]:
        return dict(self)


class ErrorBody(BaseModel):
    """Every refusal: a sentence that names what is wrong and how to fix it."""

    detail: str = Field(description="What is wrong and how to fix it.")
    field: str | None = Field(None, description="For 422: the field to supply or correct.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For a request of the wrong shape: each validation error."
    )


class HealthResponse(BaseModel):
    status: str = Field(description="`ok` when every dependency answered, else `unavailable`.")
    checks: dict[str, str] = Field(
        description="Each dependency (`redis`, `database`) and `ok` or the error class."
    )


# -- people -------------------------------------------------------------------------------------


class UserOut(RecordOut):
    username: str
    name: str
    agency: str
    job_title: str
    roles: list[str]
    permissions: list[str] = Field(description="What the roles allow (see the README table).")
    active: bool
    locked_until: str | None
    last_login: str | None
    created_by: str
    created_at: str | None
    disabled_reason: str | None
    must_change_password: bool = Field(
        False, description="An administrator reset the password: change it before anything else."
    )
    totp_enrolled: bool = Field(False, description="Enrolled in the TOTP second factor.")

    @classmethod
    def of(cls, record: service.User, **computed: Any) -> Self:
        return super().of(record, permissions=sorted(record.permissions), **computed)


class TrainingOut(RecordOut):
    course: str
    completed_on: date
    expires_on: date | None
    recorded_by: str
    recorded_at: str | None
    current: bool = Field(description="Whether the course is current today (UTC).")

    @classmethod
    def of(cls, record: service.TrainingRecord, today: date) -> Self:  # type: ignore[override]
        return super().of(record, current=record.current_on(today))


class UserDetailOut(BaseModel):
    user: UserOut
    training: list[TrainingOut]
    training_current: bool = Field(description="At least one course is current today.")


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(
        None, max_length=16, description="The one-time code, for an account with a second factor."
    )
    cookie: bool = Field(
        False,
        description="A browser's login: also set the session cookie `plateflow_session` "
        "(HttpOnly, SameSite=Strict) and the CSRF cookie `plateflow_csrf`.",
    )


class OwnPasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024, description="Checked by the rules.")


class TotpIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024, description="Your current password.")


class TotpCodeIn(BaseModel):
    code: str = Field(min_length=6, max_length=16, description="A code the app shows now.")


class TotpOut(BaseModel):
    provisioning_uri: str = Field(
        description="otpauth:// URI for an authenticator app; holds the secret; shown once. "
        "Confirm with a first code: POST /v1/auth/totp/confirm."
    )


class LoginOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`; shown once.")
    token_type: str = "bearer"
    expires_at: str | None
    user: UserOut
    csrf_token: str | None = Field(
        None,
        description="With `cookie`: send it as header `X-CSRF-Token` on every request other "
        "than GET, HEAD and OPTIONS that the session cookie signs in.",
    )


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    agency: str = Field(min_length=1, max_length=128)
    job_title: str = Field("", max_length=128)
    roles: list[str] = Field(min_length=1, description="One or more of the roles.")
    password: str = Field(min_length=1, max_length=1024, description="Checked by the rules.")


class RolesIn(BaseModel):
    roles: list[str] = Field(min_length=1)


class DisableIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class TrainingIn(BaseModel):
    course: str = Field(min_length=1, max_length=200)
    completed_on: date
    expires_on: date | None = Field(None, description="Empty when the course does not expire.")


# -- hotlists -----------------------------------------------------------------------------------


class HotlistOut(RecordOut):
    name: str
    category: str
    covert: bool
    version: int
    entries: int = Field(description="Live entries.")
    policy: dict[str, Any]
    created_by: str
    created_at: str | None
    updated_by: str
    updated_at: str | None

    @classmethod
    def of(cls, record: service.HotlistInfo, **computed: Any) -> Self:
        return super().of(record, policy=record.policy.to_dict(), **computed)


class EntryOut(RecordOut):
    entry_id: str
    plate: str = Field(description="Normalised plate, or a pattern (`?`, `*`, `[...]`).")
    is_pattern: bool
    state: str | None
    reason: str
    case_number: str | None
    source: str
    source_line: int | None
    entered_by: str
    entered_at: str | None
    effective_from: str | None
    expires_at: str | None
    version_from: int
    version_to: int | None


class ChangeOut(RecordOut):
    version: int
    change: str
    source: str
    detail: dict[str, Any]
    entry_count: int
    by: str
    at: str | None


class HotlistDetailOut(BaseModel):
    hotlist: HotlistOut
    version: int = Field(description="The version whose entries are listed.")
    entries_total: int
    entries: list[EntryOut] = Field(description="One page (offset, limit), by entry key.")
    history: list[ChangeOut]


class HotlistIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=32, examples=["stolen_vehicle"])
    policy: dict[str, Any] | None = Field(None, description="Match policy; default if empty.")


class EntryIn(ActIn):
    plate: str = Field(min_length=1, max_length=32, description="A plate or a partial pattern.")
    reason: str = Field(min_length=1, max_length=500)
    state: str | None = Field(None, max_length=8)
    case_number: str | None = Field(
        None, max_length=64, description="Required for partial patterns (427.3(d))."
    )
    expires_at: str | None = Field(
        None, description="RFC 3339 or a date; required for partial patterns."
    )
    effective_from: str | None = None
    category: str | None = Field(None, description="Creates the list if it does not exist.")


class EntryRemovedOut(BaseModel):
    hotlist: str
    plate: str
    version: int = Field(description="The new version without the entry.")


class PolicyIn(BaseModel):
    policy: dict[str, Any]
    force: bool = Field(False, description="Apply even above the alert ceiling (logged).")


class PolicyCostOut(RecordOut):
    hotlist: str
    entries: int
    hit_rate: float = Field(description="Share of ordinary reads the policy would alert on.")
    sample_size: int
    alerts_per_hour: float
    ceiling: float
    over_ceiling: bool
    description: str

    @classmethod
    def of(cls, record: service.PolicyCost, **computed: Any) -> Self:
        return super().of(record, description=record.describe(), **computed)


# -- alerts -------------------------------------------------------------------------------------


class AlertsOut(BaseModel):
    count: int
    alerts: list[dict[str, Any]] = Field(description="Alerts (ARCHITECTURE 'Alert'), newest first.")


class AlertLogEntry(BaseModel):
    id: str = Field(description="Stream id; pass the last one as `after` to continue.")
    alert: dict[str, Any]


class AlertLogOut(BaseModel):
    alerts: list[AlertLogEntry]
    last_id: str | None


# -- releases -----------------------------------------------------------------------------------


class ReleaseIn(ActIn):
    requesting_agency: str = Field(min_length=1, max_length=200)
    law_enforcement: bool = Field(description="False flags it for the public-records process.")
    requester: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=2000)
    case_number: str | None = Field(None, max_length=64)
    terms: dict[str, Any] = Field(default_factory=dict, description="What is asked for.")


class ReleaseOut(RecordOut):
    id: int
    status: str = Field(description="pending, public_records, approved, denied or fulfilled.")
    requesting_agency: str
    law_enforcement: bool
    requester: str
    purpose: str
    case_number: str | None
    terms: dict[str, Any]
    created_by: str
    created_at: str | None
    approved: bool | None
    decision_reason: str | None
    decided_by: str | None
    decided_at: str | None
    export_id: str | None
    fulfilled_by: str | None
    fulfilled_at: str | None


class DecisionIn(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


# -- audit --------------------------------------------------------------------------------------


class AuditRecordOut(BaseModel):
    seq: int
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
    key_id: str | None = Field(None, description="the audit key that signed the record")
    hmac: str | None = Field(None, description="HMAC-SHA256 of the record under that key")

    @classmethod
    def of(cls, r: service.AuditRecord) -> AuditRecordOut:
        # Every field has the name and value of the record's (its ``ts_ms`` is left out).
        return cls.model_validate(r, from_attributes=True)


class AuditOut(BaseModel):
    count: int
    records: list[AuditRecordOut]


class ChainProblemOut(RecordOut):
    seq: int
    kind: str = Field(
        description="edited, deleted, inserted, unlinked, forged (written without the audit "
        "key), unknown_key or anchor."
    )
    detail: str


class VerifyOut(RecordOut):
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    head_key_id: str | None = Field(None, description="the audit key that signed the head")
    first_bad: int | None = Field(None, description="the lowest sequence number with a problem")
    problems: list[ChainProblemOut]
    description: str
