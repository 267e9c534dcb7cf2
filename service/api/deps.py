"""FastAPI dependencies: the shared components, settings and stores."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.runtime import Components
from service.settings import Settings


def get_components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


def get_settings(components: Annotated[Components, Depends(get_components)]) -> Settings:
    return components.settings


ComponentsDep = Annotated[Components, Depends(get_components)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
