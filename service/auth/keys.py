"""API keys: created once (the secret is shown then and never again), stored as a SHA-256, revocable.

A key reads ``hcp_<id>_<secret>``: the id is public (logs and the audit log name it), the secret is
256 random bits, so a plain SHA-256 is enough (no salt or slow hash needed for a key nobody chose).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.auth.roles import ROLES
from service.core.taxonomy import Taxonomy
from service.store import audit
from service.store.db import Database
from service.store.models import ApiKey, utcnow
from service.store.visibility import AREA_DIMENSION, PRODUCT_DIMENSION, Scope, resolve_scope

log = logging.getLogger(__name__)

# Who writes a key change into the audit log: (key id, role); the CLI is ("cli", "admin").
Actor = tuple[str, str]


class KeyError_(ValueError):
    """A key request that cannot be carried out; ``code`` and ``details`` are the API error's."""

    def __init__(self, message: str, code: str = "invalid_key_request", details: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.code, self.details = code, details or {}


@dataclass(frozen=True)
class KeyScope:
    """The products and therapy areas (taxonomy value ids) a rep key may be shown; both empty: unscoped."""

    products: tuple[str, ...] = ()
    therapy_areas: tuple[str, ...] = ()

    @classmethod
    def of(cls, stored: dict[str, list[str]] | None) -> KeyScope:
        stored = stored or {}
        return cls(tuple(stored.get("products", [])), tuple(stored.get("therapy_areas", [])))

    @property
    def empty(self) -> bool:
        return not self.products and not self.therapy_areas

    def stored(self) -> dict[str, list[str]] | None:
        return None if self.empty else {"products": list(self.products), "therapy_areas": list(self.therapy_areas)}

    def resolve(self, taxonomy: Taxonomy) -> Scope | None:
        return resolve_scope(self.products, self.therapy_areas, taxonomy)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its name, its role and its scope."""

    key_id: str
    name: str
    role: str
    scope: KeyScope = KeyScope()


@dataclass(frozen=True)
class CreatedKey:
    principal: Principal
    secret: str  # the whole key, shown once
    row: ApiKey


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scope(scope: KeyScope, role: str, taxonomy: Taxonomy) -> KeyScope:
    """``scope`` with duplicates dropped, or :class:`KeyError_` naming what is wrong with it."""
    if scope.empty:
        return scope
    if role != "rep":
        raise KeyError_(f"Only rep keys carry a scope; a {role} key sees every product by its role.",
                        "scope_not_for_role", {"role": role})
    for dimension, values in ((PRODUCT_DIMENSION, scope.products), (AREA_DIMENSION, scope.therapy_areas)):
        allowed = taxonomy.dimension(dimension).value_ids if taxonomy.has_dimension(dimension) else []
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise KeyError_(f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                            f"{'a value' if len(unknown) == 1 else 'values'} of dimension {dimension!r} in "
                            f"taxonomy {taxonomy.key}.", "unknown_value",
                            {"dimension": dimension, "unknown": unknown, "allowed": allowed})
    return KeyScope(tuple(dict.fromkeys(scope.products)), tuple(dict.fromkeys(scope.therapy_areas)))


def create_key(s: Session, role: str, name: str, *, scope: KeyScope = KeyScope(),
               taxonomy: Taxonomy | None = None, actor: Actor = ("cli", "admin")) -> CreatedKey:
    """A new key, added to ``s`` with its audit entry (they commit together). A scope needs the ``taxonomy`` to
    check it."""
    if role not in ROLES:
        raise KeyError_(f"unknown role {role!r}; roles are {', '.join(ROLES)}", "unknown_role",
                        {"allowed": list(ROLES)})
    if not scope.empty:
        if taxonomy is None:
            raise ValueError("a scoped key needs the taxonomy to check its scope against")
        scope = check_scope(scope, role, taxonomy)
    key_id = secrets.token_hex(6)
    secret = f"hcp_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(id=key_id, name=name, role=role, key_hash=_hash(secret), scope=scope.stored())
    s.add(row)
    audit.record(s, *actor, "key.create", "api_key", key_id, None,
                 {"role": role, "name": name, "scope": scope.stored()})
    s.flush()
    return CreatedKey(Principal(key_id, name, role, scope), secret, row)


def set_scope(s: Session, key_id: str, scope: KeyScope, taxonomy: Taxonomy, actor: Actor) -> ApiKey | None:
    """Replace a key's scope (an empty one lifts it), audited with before and after; None for no such key.
    The next request with the key is served under the new scope (keys are read on every request)."""
    row = s.get(ApiKey, key_id)
    if row is None:
        return None
    scope = check_scope(scope, row.role, taxonomy)
    before = row.scope
    row.scope = scope.stored()
    audit.record(s, *actor, "key.scope", "api_key", key_id, {"scope": before}, {"scope": row.scope})
    s.flush()
    return row


def verify_key(db: Database, presented: str) -> Principal | None:
    """The key's principal, or None for an unknown, malformed or revoked key."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "hcp" or len(presented) > 200:
        return None
    with db.session() as s:
        row = s.get(ApiKey, parts[1])
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(presented)):
            return None
        principal = Principal(row.id, row.name, row.role, KeyScope.of(row.scope))
        now = utcnow()
        stale = row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60
    if stale:  # coarse, so a busy key does not write on every request
        _record_use(db, principal.key_id, now)
    return principal


def _record_use(db: Database, key_id: str, now: datetime) -> None:
    """Note a key's last use in a transaction of its own, which may fail: a database that cannot be written
    (a full disk, read-only files) must still let every key read what it may."""
    try:
        with db.session() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    except SQLAlchemyError as exc:
        log.warning("key %s: its last use could not be recorded (%s); the request goes on", key_id,
                    exc.__class__.__name__)


def revoke_key(s: Session, key_id: str, actor: Actor = ("cli", "admin")) -> bool:
    """Revoke a key (idempotent), audited in the same transaction; False for no such key."""
    row = s.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        who = {"name": row.name, "role": row.role}
        audit.record(s, *actor, "key.revoke", "api_key", key_id, {**who, "revoked_at": None},
                     {**who, "revoked_at": row.revoked_at})
    return True


def list_keys(s: Session) -> list[ApiKey]:
    """Every key, oldest first."""
    return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def has_active_admin(db: Database) -> bool:
    with db.session() as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1)) \
            is not None
