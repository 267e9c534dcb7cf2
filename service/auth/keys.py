"""API keys: created once (the secret is shown then and never again), stored as a SHA-256, revocable.

A key reads ``hcp_<id>_<secret>``: the id is public (logs and the audit log name it), the secret is
256 random bits, so a plain SHA-256 is enough (no salt or slow hash needed for a key nobody chose).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from service.auth.roles import ROLES
from service.store.db import Database
from service.store.models import ApiKey, utcnow


class KeyError_(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its name and its role."""

    key_id: str
    name: str
    role: str


@dataclass(frozen=True)
class CreatedKey:
    principal: Principal
    secret: str  # the whole key, shown once


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(db: Database, role: str, name: str) -> CreatedKey:
    if role not in ROLES:
        raise KeyError_(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    key_id = secrets.token_hex(6)
    secret = f"hcp_{key_id}_{secrets.token_urlsafe(32)}"
    with db.session() as s:
        s.add(ApiKey(id=key_id, name=name, role=role, key_hash=_hash(secret)))
    return CreatedKey(Principal(key_id, name, role), secret)


def verify_key(db: Database, presented: str) -> Principal | None:
    """The key's principal, or None for an unknown, malformed or revoked key."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "hcp" or len(presented) > 200:
        return None
    with db.session() as s:
        row = s.get(ApiKey, parts[1])
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(presented)):
            return None
        now = utcnow()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            row.last_used_at = now  # coarse, so a busy key does not write on every request
        return Principal(row.id, row.name, row.role)



def revoke_key(db: Database, key_id: str) -> bool:
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return True


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def has_active_admin(db: Database) -> bool:
    with db.session() as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1)) \
            is not None
