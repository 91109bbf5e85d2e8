"""Roles and what each may do (policy 427.2.1(a): only authorised members use the system).

:data:`ROLE_PERMISSIONS` is the table the README shows (:func:`role_table_markdown` prints it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ROLES = (
    "dispatcher",
    "officer",
    "investigator",
    "records_supervisor",
    "administrator",
    "auditor",
)

#: Every permission and what it allows.
PERMISSIONS: Mapping[str, str] = {
    "alerts:receive": "receive live hotlist alerts on a dispatch console",
    "alerts:view": "view alert history",
    "alerts:disposition": "accept or reject an alert, with a reason",
    "reads:search": "search stored reads by plate or pattern (with a case or event number)",
    "reads:canvass": "canvass stored reads by place and time around a scene (427.3(d))",
    "hotlists:view": "view hotlists and their entries",
    "hotlists:view_covert": "see covert hotlists and their alerts",
    "hotlists:partial": "enter partial-plate entries for a major crime (case number, expiry)",
    "hotlists:manage": "create, import, edit and set the policy of hotlists",
    "evidence:export": "export reads as evidence to portable media (427.4)",
    "retention:hold": "place and release legal holds on stored reads",
    "releases:request": "record a release request from another agency (427.7)",
    "releases:decide": "approve or deny a release request (Records Supervisor, 427.7)",
    "releases:view": "view release requests and their decisions",
    "users:manage": "add, disable and train users; assign roles",
    "users:view": "list users and their training",
    "audit:view": "read the audit log, verify the chain and run the quarterly report (427.5(c))",
}

#: Role -> the permissions it grants. Least privilege: administrators manage the system but do
#: not search reads; auditors read the audit log but not the reads themselves.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "dispatcher": frozenset(
        {"alerts:receive", "alerts:view", "alerts:disposition", "hotlists:view"}
    ),
    "officer": frozenset(
        {"alerts:receive", "alerts:view", "alerts:disposition", "hotlists:view", "reads:search"}
    ),
    "investigator": frozenset(
        {
            "alerts:view",
            "reads:search",
            "reads:canvass",
            "hotlists:view",
            "hotlists:view_covert",
            "hotlists:partial",
            "evidence:export",
            "releases:request",
        }
    ),
    "records_supervisor": frozenset(
        {
            "alerts:view",
            "reads:search",
            "hotlists:view",
            "evidence:export",
            "retention:hold",
            "releases:request",
            "releases:decide",
            "releases:view",
        }
    ),
    "administrator": frozenset(
        {
            "hotlists:view",
            "hotlists:view_covert",
            "hotlists:manage",
            "hotlists:partial",
            "users:manage",
            "users:view",
        }
    ),
    "auditor": frozenset({"audit:view", "users:view", "releases:view", "alerts:view"}),
}


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """The union of the permissions of ``roles`` (unknown roles grant nothing)."""
    out: set[str] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(out)


def role_table_markdown() -> str:
    """The role -> permission table as Markdown, one row per permission, for the README."""
    head = "| permission | what it allows | " + " | ".join(ROLES) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in ROLES) + " |"
    rows = [
        f"| `{perm}` | {text} | "
        + " | ".join("yes" if perm in ROLE_PERMISSIONS[r] else "" for r in ROLES)
        + " |"
        for perm, text in PERMISSIONS.items()
    ]
    return "\n".join([head, rule, *rows])
