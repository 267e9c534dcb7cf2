"""FastAPI dependencies: the shared components, settings, and the request's one database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.runtime import Components
from service.settings import Settings


def get_components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


def get_settings(components: Annotated[Components, Depends(get_components)]) -> Settings:
    return components.settings


def get_session(components: Annotated[Components, Depends(get_components)]) -> Iterator[Session]:
    """The request's unit of work: one session, one transaction, committed when the route returns and rolled
    back when it raises. ``scope="function"`` (below) ends it before the response is sent, so a client that got
    a 2xx can read what it wrote, and a failed commit is an error answer rather than a lost write."""
    with components.db.session() as session:
        yield session


ComponentsDep = Annotated[Components, Depends(get_components)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
