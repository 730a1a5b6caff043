"""Request bodies of the key management endpoints (``/v1/organization/...``), a part of OpenAI's Admin
API: projects, and the service accounts whose creation makes a project's API key.

Fields of OpenAI's that this server cannot honour (data residency, external keys, expiring keys, spend
limits) are accepted when absent or null and refused with a 400 naming them otherwise.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from assistd.protocol.common import RequestBody

NAME_MAX = 256  # the column's size


def _refuse_used(body: RequestBody, fields: tuple[str, ...]) -> None:
    for field in fields:
        if getattr(body, field) not in (None, False):
            # The HTTP layer turns ctx["param"] into the error's param.
            raise PydanticCustomError(
                "unsupported", f"'{field}' is not supported by this server.", {"param": field}
            )


class ProjectCreate(RequestBody):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    external_key_id: Any = None
    geography: Any = None
    residency: Any = None

    @model_validator(mode="after")
    def _supported(self) -> ProjectCreate:
        _refuse_used(self, ("external_key_id", "geography", "residency"))
        return self


class ServiceAccountCreate(RequestBody):
    """Makes a service account with an API key: the way the Admin API makes a key for a project."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    create_service_account_only: bool | None = None
    expires_in_seconds: Any = None
    spend_limit: Any = None

    @model_validator(mode="after")
    def _supported(self) -> ServiceAccountCreate:
        # An account without a key would be nothing here: a key is all a service account is.
        _refuse_used(self, ("create_service_account_only", "expires_in_seconds", "spend_limit"))
        return self
