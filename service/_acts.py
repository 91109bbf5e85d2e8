"""Every act policy 427 governs, in one table: its audit action, the permission it needs, its
audit kind, and whether it is an access to ALPR data (then training and a justification are
required). Adapters name an act from here when they check a caller before parsing the rest
of a request; the service functions use the same objects, so the two can never disagree.
"""

from __future__ import annotations

from records import Permission as P
from service._door import Act

__all__ = ["Acts"]


class Acts:
    """The acts, by what a person does."""

    # stored reads (427.3(d))
    PLATE_HISTORY = Act("reads.plate", P.READS_SEARCH)
    PARTIAL_SEARCH = Act("reads.partial", P.READS_SEARCH)
    CANVASS = Act("reads.canvass", P.READS_CANVASS)
    PAST_READS = Act("reads.past", P.READS_SEARCH)
    # legal holds and evidence (427.4)
    HOLD_PLACE = Act("holds.place", P.RETENTION_HOLD, kind="retention")
    HOLD_LIST = Act("holds.list", (P.RETENTION_HOLD, P.EVIDENCE_EXPORT), kind="retention")
    HOLD_RELEASE = Act("holds.release", P.RETENTION_HOLD, kind="retention")
    EVIDENCE_EXPORT = Act("evidence.export", P.EVIDENCE_EXPORT, kind="retention")
    EVIDENCE_VERIFY = Act("evidence.verify", P.EVIDENCE_EXPORT, kind="retention")
    EVIDENCE_DOWNLOAD = Act("evidence.download", P.EVIDENCE_EXPORT, kind="retention")
    EVIDENCE_CUSTODY = Act("evidence.custody", P.EVIDENCE_EXPORT, kind="retention")
    # releases (427.7)
    RELEASE_REQUEST = Act("releases.request", P.RELEASES_REQUEST, kind="release")
    RELEASE_LIST = Act("releases.list", P.RELEASES_VIEW, kind="release")
    RELEASE_VIEW = Act("releases.view", P.RELEASES_VIEW, kind="release")
    RELEASE_DECIDE = Act("releases.decide", P.RELEASES_DECIDE, kind="release")
    RELEASE_EXPORT = Act("releases.export", P.RELEASES_DECIDE, kind="release")
    # alerts
    ALERT_HISTORY = Act("alerts.history", P.ALERTS_VIEW)
    ALERT_LOG = Act("alerts.log", P.ALERTS_VIEW)
    #: The live alert stream (SSE): its opening, and its closing with the count delivered.
    ALERT_STREAM = Act("alerts.stream", P.ALERTS_RECEIVE, kind="alert")
    ALERT_STREAM_CLOSE = Act("alerts.stream.close", P.ALERTS_RECEIVE, kind="alert")
    # dispositions (427.3(g)): not inquiries (the alert is the reason; no justification asked),
    # but a transition needs current training, checked by records
    DISPOSITION = Act("alerts.disposition", P.ALERTS_DISPOSITION, kind="alert", data_access=False)
    DISPOSITION_STATES = Act(
        "alerts.dispositions", P.ALERTS_RECEIVE, kind="alert", data_access=False
    )
    DISPOSITION_LISTS = Act(
        "dispositions.lists", (P.ALERTS_RECEIVE, P.USERS_MANAGE), kind="alert", data_access=False
    )
    DISPOSITION_LISTS_EDIT = Act(
        "dispositions.lists.edit", P.USERS_MANAGE, kind="admin", data_access=False
    )
    # hotlists
    HOTLIST_LIST = Act("hotlists.list", P.HOTLISTS_VIEW)
    HOTLIST_VIEW = Act("hotlists.view", P.HOTLISTS_VIEW)
    HOTLIST_CREATE = Act("hotlists.create", P.HOTLISTS_MANAGE, kind="hotlist")
    HOTLIST_IMPORT = Act("hotlists.import", P.HOTLISTS_MANAGE, kind="hotlist")
    HOTLIST_ENTRY_ADD = Act(
        "hotlists.entry.add", (P.HOTLISTS_MANAGE, P.HOTLISTS_PARTIAL), kind="hotlist"
    )
    HOTLIST_ENTRY_REMOVE = Act(
        "hotlists.entry.remove", (P.HOTLISTS_MANAGE, P.HOTLISTS_PARTIAL), kind="hotlist"
    )
    HOTLIST_POLICY = Act("hotlists.policy", P.HOTLISTS_MANAGE, kind="hotlist")
    # users and training (administration: no ALPR data, but named, trained and justified)
    USER_LIST = Act("users.list", P.USERS_VIEW, kind="admin")
    USER_VIEW = Act("users.view", P.USERS_VIEW, kind="admin")
    USER_ADD = Act("users.add", P.USERS_MANAGE, kind="admin")
    USER_ROLES = Act("users.roles", P.USERS_MANAGE, kind="admin")
    USER_DISABLE = Act("users.disable", P.USERS_MANAGE, kind="admin")
    USER_ENABLE = Act("users.enable", P.USERS_MANAGE, kind="admin")
    USER_PASSWORD = Act("users.password", P.USERS_MANAGE, kind="admin")
    TRAINING_LIST = Act("users.training", P.USERS_VIEW, kind="admin")
    TRAINING_RECORD = Act("users.train", P.USERS_MANAGE, kind="admin")
    TRAINING_LAPSED = Act("users.lapsed", P.USERS_VIEW, kind="admin")
    # the audit log (427.5)
    AUDIT_READ = Act("audit.read", P.AUDIT_VIEW)
    AUDIT_VERIFY = Act("audit.verify", P.AUDIT_VIEW)
    AUDIT_REPORT = Act("audit.report", P.AUDIT_VIEW)
    # the public transparency page (427.2.1(e)(g)): the posted policy and its designees
    TRANSPARENCY_PUBLISH = Act("transparency.publish", P.TRANSPARENCY_MANAGE, kind="admin")
    TRANSPARENCY_DESIGNATE = Act("transparency.designate", P.TRANSPARENCY_MANAGE, kind="admin")

    #: Roles that may enter hotlist entries may also raise their historical alerts.
    ENTRY_PERMISSIONS = (P.HOTLISTS_MANAGE, P.HOTLISTS_PARTIAL)
