"""The one door for every act a person performs on ALPR data (policy 427.3(c), 427.5(a)).

Each act is a function of a :class:`Door` (the records database, the read store, the Redis
client and the narrow :class:`ServiceConfig`) and an :class:`Actor` (a user from an open
session, their :class:`Justification`, their client) that returns plain data and runs inside
the audited transaction. :class:`Acts` lists every act with its permission; covert visibility
is decided by :class:`Covert` alone; refusals are :class:`ServiceError` subclasses with a
``kind`` and a ``field`` (:func:`as_service_error` gives the kind of any records error an act
lets through). The records and store types the acts return (:class:`User`,
:class:`HotlistInfo`, :class:`LegalHold`...) are re-exported here, so an adapter needs no other
package. Nothing here knows of HTTP or the terminal: the API and the CLI are adapters that
parse, call a function here, and render.

Acts: :func:`search_page` / :func:`search_stream` (plate history, partial plate, canvass),
:func:`past_page` / :func:`past_stream` (past-read matching, with historical alerts),
:func:`place_hold`, :func:`release_hold`, :func:`list_holds`, :func:`export_evidence`,
:func:`verify_export`, :func:`evidence_file`, :func:`add_custody`, :func:`request_release`,
:func:`list_releases`, :func:`get_release`, :func:`decide_release`, :func:`fulfil_release`,
:func:`alert_history`, :func:`alert_log`, :func:`open_stream` (the live alert stream,
:class:`AlertStream`), :func:`list_hotlists`, :func:`view_hotlist`,
:func:`create_hotlist`, :func:`import_hotlist`, :func:`add_entry`, :func:`remove_entry`,
:func:`set_policy`, :func:`check_policy`, user administration and training
(:func:`add_user` ...), :func:`read_audit`, :func:`verify_audit`, :func:`audit_report`,
:func:`publish_policy` and :func:`designate` (the public page's records). :func:`transparency`
computes the public page's figures (aggregates only, no actor; :class:`TransparencyCache`
keeps them), :func:`render_transparency_html` renders them; dispositions
(:func:`transition`, :func:`current_dispositions`, :func:`disposition_lists`,
:func:`add_disposition_code`, :func:`retire_disposition_code`).
"""

from records import (
    AuditRecord,
    DispositionCode,
    DispositionLists,
    EntryRecord,
    HotlistChange,
    HotlistDetail,
    HotlistInfo,
    ImportResult,
    KindShare,
    PlateSample,
    PolicyCost,
    ReleaseRequest,
    Report,
    Session,
    TrainingRecord,
    User,
    VerifyResult,
    iso_utc,
)
from service._acts import Acts
from service._alerts import ALERT_KINDS, alert_history, alert_log
from service._audit import audit_report, read_audit, verify_audit, verify_audit_scheduled
from service._config import ServiceConfig
from service._covert import Covert
from service._dispositions import (
    add_disposition_code,
    current_dispositions,
    disposition_lists,
    retire_disposition_code,
    since_ms_of,
    transition,
)
from service._door import ANONYMOUS, Act, Actor, Door, Justification
from service._errors import (
    Conflict,
    Forbidden,
    Invalid,
    Locked,
    NotFound,
    ServiceError,
    Throttled,
    Unauthenticated,
    Unavailable,
    as_service_error,
)
from service._evidence import (
    EvidenceCheck,
    Export,
    add_custody,
    evidence_file,
    export_evidence,
    verify_export,
)
from service._holds import list_holds, place_hold, release_hold
from service._hotlists import (
    HotlistPage,
    add_entry,
    check_policy,
    create_hotlist,
    import_hotlist,
    list_hotlists,
    remove_entry,
    set_policy,
    view_hotlist,
)
from service._pages import cursor_window
from service._past import PAST_SCHEMA, PastRequest, past_page, past_stream
from service._people import (
    NewUser,
    UserDetail,
    add_user,
    change_password,
    confirm_totp,
    describe_user,
    disable_user,
    enable_user,
    enrol_totp,
    lapsed_training,
    list_training,
    list_users,
    login,
    logout,
    record_training,
    set_password,
    set_roles,
    today,
    view_user,
)
from service._query import MATCH_MODES, READ_RESULT_SCHEMA, SearchSpec
from service._releases import (
    Fulfilment,
    decide_release,
    fulfil_release,
    get_release,
    list_releases,
    request_release,
)
from service._search import ResultStream, SearchPage, search_act, search_page, search_stream
from service._stream import (
    CONSOLE_WATCH,
    REPLAY_DEFAULT,
    REPLAY_MAX,
    AlertStream,
    Cursor,
    open_stream,
)
from service._transparency import (
    TransparencyCache,
    designate,
    fewer_than,
    policy_file,
    publish_policy,
    transparency,
)
from service._transparency_html import render_transparency_html
from service._window import to_ms, utc_window
from sinks import LegalHold

__all__ = [
    "ALERT_KINDS",
    "ANONYMOUS",
    "CONSOLE_WATCH",
    "MATCH_MODES",
    "PAST_SCHEMA",
    "READ_RESULT_SCHEMA",
    "REPLAY_DEFAULT",
    "REPLAY_MAX",
    "Act",
    "Actor",
    "Acts",
    "AlertStream",
    "AuditRecord",
    "Conflict",
    "Covert",
    "Cursor",
    "DispositionCode",
    "DispositionLists",
    "Door",
    "EntryRecord",
    "EvidenceCheck",
    "Export",
    "Forbidden",
    "Fulfilment",
    "HotlistChange",
    "HotlistDetail",
    "HotlistInfo",
    "HotlistPage",
    "ImportResult",
    "Invalid",
    "Justification",
    "KindShare",
    "LegalHold",
    "Locked",
    "NewUser",
    "NotFound",
    "PastRequest",
    "PlateSample",
    "PolicyCost",
    "ReleaseRequest",
    "Report",
    "ResultStream",
    "SearchPage",
    "SearchSpec",
    "ServiceConfig",
    "ServiceError",
    "Session",
    "Throttled",
    "TrainingRecord",
    "TransparencyCache",
    "Unauthenticated",
    "Unavailable",
    "User",
    "UserDetail",
    "VerifyResult",
    "add_custody",
    "add_disposition_code",
    "add_entry",
    "add_user",
    "alert_history",
    "alert_log",
    "as_service_error",
    "audit_report",
    "change_password",
    "check_policy",
    "confirm_totp",
    "create_hotlist",
    "current_dispositions",
    "cursor_window",
    "decide_release",
    "describe_user",
    "designate",
    "disable_user",
    "disposition_lists",
    "enable_user",
    "enrol_totp",
    "evidence_file",
    "export_evidence",
    "fewer_than",
    "fulfil_release",
    "get_release",
    "import_hotlist",
    "iso_utc",
    "lapsed_training",
    "list_holds",
    "list_hotlists",
    "list_releases",
    "list_training",
    "list_users",
    "login",
    "logout",
    "open_stream",
    "past_page",
    "past_stream",
    "place_hold",
    "policy_file",
    "publish_policy",
    "read_audit",
    "record_training",
    "release_hold",
    "remove_entry",
    "render_transparency_html",
    "request_release",
    "retire_disposition_code",
    "search_act",
    "search_page",
    "search_stream",
    "set_password",
    "set_policy",
    "set_roles",
    "since_ms_of",
    "to_ms",
    "today",
    "transition",
    "transparency",
    "utc_window",
    "verify_audit",
    "verify_audit_scheduled",
    "verify_export",
    "view_hotlist",
    "view_user",
]
