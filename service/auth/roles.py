"""Roles and what each may do. A route names the permission it needs; a key's role grants permissions."""

from __future__ import annotations

from typing import Literal

Role = Literal["admin", "content_editor", "reviewer", "rep"]
ROLES: tuple[Role, ...] = ("admin", "content_editor", "reviewer", "rep")

Permission = Literal[
    "assets:read",      # every asset, drafts included
    "assets:read_approved",  # approved, unexpired assets only (reps)
    "assets:write",     # upload, ingest a path, delete
    "taxonomy:read", "taxonomy:write",
    "tags:review", "tag:run", "jobs:read", "eval:read", "match", "audit:read", "keys:admin",
    "eval:write",       # make evaluation reports
    "hcp:opt_out",      # record or lift an HCP's opt-out from personalised recommendations
    "content:check",    # check a draft's claims against its references (POST /v1/content/check)
    "gaps:read",        # the content-gap report: needs asked for that nothing served (GET /v1/reports/content-gaps)
    "events:write",     # record engagement events and feedback on suggestions
    "hcp:read",         # an HCP's profile (GET /v1/hcps/{id}/profile: the PIPL access right)
    "hcp:write",        # an HCP's static attributes (PUT /v1/hcps/{id}, from the CRM)
    "hcp:erase",        # erase everything held about an HCP (DELETE /v1/hcps/{id})
]

GRANTS: dict[Role, frozenset[Permission]] = {
    "admin": frozenset({"assets:read", "assets:read_approved", "assets:write", "taxonomy:read", "taxonomy:write",
                        "tags:review", "tag:run", "jobs:read", "eval:read", "eval:write", "match", "audit:read",
                        "keys:admin", "hcp:opt_out", "content:check", "gaps:read", "events:write", "hcp:read",
                        "hcp:write", "hcp:erase"}),
    "content_editor": frozenset({"assets:read", "assets:read_approved", "assets:write", "taxonomy:read",
                                 "taxonomy:write", "tag:run", "jobs:read", "content:check", "gaps:read"}),
    "reviewer": frozenset({"assets:read", "assets:read_approved", "taxonomy:read", "tags:review", "tag:run",
                           "jobs:read", "eval:read", "eval:write", "content:check", "gaps:read"}),
    "rep": frozenset({"assets:read_approved", "taxonomy:read", "match", "hcp:opt_out", "events:write", "hcp:read"}),
}


def permissions(role: str) -> frozenset[Permission]:
    """What ``role`` may do (nothing for a role that does not exist)."""
    return GRANTS.get(role, frozenset())  # type: ignore[call-overload]


def allows(role: str, permission: Permission) -> bool:
    return permission in permissions(role)
