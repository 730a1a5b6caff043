"""/v1/organization/...: projects and their API keys over HTTP, in the shapes of OpenAI's Admin API, so
that ``OpenAI(admin_api_key=...).admin.organization.projects`` manages them. Only the key of
``ASSISTD_ADMIN_KEY`` opens these endpoints; the project keys it makes open the rest of the API.

A service account here is nothing but the holder of one key: creating one makes the key (shown once,
in the response), and the key's own id names the account too.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assistd.api.deps import bearer_token
from assistd.api.responses import json_response
from assistd.config import Settings
from assistd.errors import AuthenticationFailed, NotFound
from assistd.protocol.organization import ProjectCreate, ServiceAccountCreate
from assistd.protocol.pagination import Page
from assistd.services.api_keys import ApiKeys
from assistd.store.api_keys import StoredKey, StoredProject
from assistd.types import (
    Project,
    ProjectApiKey,
    ProjectApiKeyDeleted,
    ProjectApiKeyOwner,
    ServiceAccountCreated,
    ServiceAccountKey,
    ServiceAccountOwner,
)

# The objects listed here, each with an ``id``.
Listed = TypeVar("Listed", Project, ProjectApiKey)


async def require_admin_key(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.admin_key is None:
        raise AuthenticationFailed(
            "Key management over HTTP is off on this server: set ASSISTD_ADMIN_KEY to turn it on, or use "
            "`assistd keys`.",
            code="invalid_api_key",
        )
    token = bearer_token(request)
    if token is None or not secrets.compare_digest(
        token.encode(), settings.admin_key.get_secret_value().encode()
    ):
        raise AuthenticationFailed(
            "These endpoints need the admin key (ASSISTD_ADMIN_KEY) as the bearer key.",
            code="invalid_api_key",
        )


def api_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.api_keys
    return keys


Keys = Annotated[ApiKeys, Depends(api_keys)]
Limit = Annotated[int, Query(ge=1, le=100)]

router = APIRouter(
    prefix="/organization/projects", tags=["organization"], dependencies=[Depends(require_admin_key)]
)


@router.get("", response_model=Page[Project])
async def list_projects(keys: Keys, limit: Limit = 20, after: str | None = None) -> Response:
    return json_response(_page([_project(p) for p in await keys.projects()], after, limit))


@router.post("", response_model=Project)
async def create_project(body: ProjectCreate, keys: Keys) -> Response:
    return json_response(_project(await keys.create_project(body.name)))


@router.get("/{project_id}", response_model=Project)
async def retrieve_project(project_id: str, keys: Keys) -> Response:
    return json_response(_project(await keys.project(project_id)))


@router.post("/{project_id}/service_accounts", response_model=ServiceAccountCreated)
async def create_service_account(project_id: str, body: ServiceAccountCreate, keys: Keys) -> Response:
    made = await keys.create_in(project_id, body.name)
    key = made.key
    return json_response(
        ServiceAccountCreated(
            object="organization.project.service_account",
            id=key.id,
            name=body.name,
            role="member",
            created_at=key.created_at,
            api_key=ServiceAccountKey(
                object="organization.project.service_account.api_key",
                id=key.id,
                name=body.name,
                created_at=key.created_at,
                value=made.secret,
            ),
        )
    )


@router.get("/{project_id}/api_keys", response_model=Page[ProjectApiKey])
async def list_api_keys(project_id: str, keys: Keys, limit: Limit = 20, after: str | None = None) -> Response:
    found = await keys.list_keys(project_id, active=True)
    return json_response(_page([_api_key(key) for key in found], after, limit))


@router.get("/{project_id}/api_keys/{key_id}", response_model=ProjectApiKey)
async def retrieve_api_key(project_id: str, key_id: str, keys: Keys) -> Response:
    found = next((key for key in await keys.list_keys(project_id, active=True) if key.id == key_id), None)
    if found is None:
        raise NotFound("API key", key_id)
    return json_response(_api_key(found))


@router.delete("/{project_id}/api_keys/{key_id}", response_model=ProjectApiKeyDeleted)
async def delete_api_key(project_id: str, key_id: str, keys: Keys) -> Response:
    # Revoked, not deleted: the row stays, so that the server stays closed once keys exist.
    if not await keys.revoke(key_id, project_id):
        await keys.project(project_id)  # an unknown project is named as such
        raise NotFound("API key", key_id)
    return json_response(
        ProjectApiKeyDeleted(object="organization.project.api_key.deleted", id=key_id, deleted=True)
    )


def _project(project: StoredProject) -> Project:
    return Project(
        object="organization.project",
        id=project.id,
        name=project.name,
        created_at=project.created_at,
        archived_at=None,
        status="active",
    )


def _api_key(key: StoredKey) -> ProjectApiKey:
    name = key.name or ""
    return ProjectApiKey(
        object="organization.project.api_key",
        id=key.id,
        name=name,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        redacted_value=f"{key.prefix}...",
        owner=ProjectApiKeyOwner(
            type="service_account",
            service_account=ServiceAccountOwner(
                id=key.id, name=name, created_at=key.created_at, role="member"
            ),
        ),
        owner_project_access="active",
    )


def _page(items: Sequence[Listed], after: str | None, limit: int) -> Page[Listed]:
    """One page of a list in creation order (OpenAI's order for these), after the object ``after``."""
    ids = [item.id for item in items]
    start = ids.index(after) + 1 if after in ids else (0 if after is None else len(ids))
    data = list(items[start : start + limit])
    return Page[Listed](
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=start + limit < len(items),
    )
