"""API keys for admins: create (the secret is in that answer only), list, change a rep key's scope, revoke.
Every change is in the audit log, committed with it. ``GET /v1/me``: any key, about itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from service.api.auth import PrincipalDep, require
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.schemas import KeyCreate, KeyCreated, KeyOut, KeyScopeBody, MeOut
from service.auth import keys
from service.auth.keys import KeyScope, Principal
from service.auth.roles import permissions

router = APIRouter(prefix="/v1/keys", tags=["keys"])
me_router = APIRouter(prefix="/v1/me", tags=["keys"])
AdminDep = Annotated[Principal, Depends(require("keys:admin"))]


def _refused(err: keys.KeyError_) -> ApiError:
    return ApiError(422, err.code, str(err), err.details)


def _scope(body: KeyScopeBody) -> KeyScope:
    return KeyScope(tuple(body.products), tuple(body.therapy_areas))


@router.post("", response_model=KeyCreated, status_code=201, summary="Create a key (its secret is shown once)")
def create_key(body: KeyCreate, c: ComponentsDep, s: SessionDep, principal: AdminDep) -> KeyCreated:
    try:
        created = keys.create_key(s, body.role, body.name, scope=_scope(body), taxonomy=c.tagger.taxonomy,
                                  actor=(principal.key_id, principal.role))
    except keys.KeyError_ as err:
        raise _refused(err) from err
    return KeyCreated(**KeyOut.model_validate(created.row).model_dump(), secret=created.secret)


@router.get("", response_model=list[KeyOut], summary="Every key with its role, scope and state (never a secret)")
def list_keys(s: SessionDep, _: AdminDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in keys.list_keys(s)]


@router.put("/{key_id}/scope", response_model=KeyOut,
            summary="Replace a rep key's scope (empty lists lift it); applies from the key's next request")
def set_scope(key_id: RecordIdPath, body: KeyScopeBody, c: ComponentsDep, s: SessionDep,
              principal: AdminDep) -> KeyOut:
    try:
        row = keys.set_scope(s, key_id, _scope(body), c.tagger.taxonomy, (principal.key_id, principal.role))
    except keys.KeyError_ as err:
        raise _refused(err) from err
    if row is None:
        raise ApiError(404, "key_not_found", f"No key {key_id!r}.")
    return KeyOut.model_validate(row)


@router.delete("/{key_id}", status_code=204, response_class=Response,
               summary="Revoke a key: refused from its next request on")
def revoke_key(key_id: RecordIdPath, s: SessionDep, principal: AdminDep) -> Response:
    if not keys.revoke_key(s, key_id, (principal.key_id, principal.role)):
        raise ApiError(404, "key_not_found", f"No key {key_id!r}.")
    return Response(status_code=204)


@me_router.get("", response_model=MeOut, summary="The calling key: its name, role, permissions and scope")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(key_id=principal.key_id, name=principal.name, role=principal.role,
                 permissions=sorted(permissions(principal.role)), scope=principal.scope.stored())
