"""API keys for admins: create (the secret is in that answer only), list, change a rep key's scope, revoke.
Every change is in the audit log, committed with it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from service.api.auth import require
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.schemas import KeyCreate, KeyCreated, KeyOut, KeyScopeBody
from service.auth import keys
from service.auth.keys import KeyScope, Principal
from service.runtime import Components
from service.store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])
AdminDep = Annotated[Principal, Depends(require("keys:admin"))]


def _refused(err: keys.KeyError_) -> ApiError:
    return ApiError(422, err.code, str(err), err.details)


def _scope(body: KeyScopeBody) -> KeyScope:
    return KeyScope(tuple(body.products), tuple(body.therapy_areas))


def _create(c: Components, principal: Principal, body: KeyCreate) -> KeyCreated:
    try:
        created = keys.create_key(c.db, body.role, body.name, scope=_scope(body), taxonomy=c.tagger.taxonomy,
                                  actor=(principal.key_id, principal.role))
    except keys.KeyError_ as err:
        raise _refused(err) from err
    with c.db.session() as s:
        row = s.get(ApiKey, created.principal.key_id)
        return KeyCreated(**KeyOut.model_validate(row).model_dump(), secret=created.secret)


@router.post("", response_model=KeyCreated, status_code=201, summary="Create a key (its secret is shown once)")
async def create_key(body: KeyCreate, c: ComponentsDep, principal: AdminDep) -> KeyCreated:
    return await run_in_threadpool(_create, c, principal, body)


def _list(c: Components) -> list[KeyOut]:
    with c.db.session() as s:
        return [KeyOut.model_validate(k) for k in s.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))]


@router.get("", response_model=list[KeyOut], summary="Every key with its role, scope and state (never a secret)")
async def list_keys(c: ComponentsDep, _: AdminDep) -> list[KeyOut]:
    return await run_in_threadpool(_list, c)


def _set_scope(c: Components, principal: Principal, key_id: str, body: KeyScopeBody) -> KeyOut:
    try:
        row = keys.set_scope(c.db, key_id, _scope(body), c.tagger.taxonomy, (principal.key_id, principal.role))
    except keys.KeyError_ as err:
        raise _refused(err) from err
    if row is None:
        raise ApiError(404, "key_not_found", f"No key {key_id!r}.")
    return KeyOut.model_validate(row)


@router.put("/{key_id}/scope", response_model=KeyOut,
            summary="Replace a rep key's scope (empty lists lift it); applies from the key's next request")
async def set_scope(key_id: RecordIdPath, body: KeyScopeBody, c: ComponentsDep, principal: AdminDep) -> KeyOut:
    return await run_in_threadpool(_set_scope, c, principal, key_id, body)


def _revoke(c: Components, principal: Principal, key_id: str) -> None:
    if not keys.revoke_key(c.db, key_id, (principal.key_id, principal.role)):
        raise ApiError(404, "key_not_found", f"No key {key_id!r}.")


@router.delete("/{key_id}", status_code=204, response_class=Response,
               summary="Revoke a key: refused from its next request on")
async def revoke_key(key_id: RecordIdPath, c: ComponentsDep, principal: AdminDep) -> Response:
    await run_in_threadpool(_revoke, c, principal, key_id)
    return Response(status_code=204)
