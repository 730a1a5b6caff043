"""The API's objects, as the official ``openai`` SDK defines them.

assistd builds its responses from the SDK's own pydantic models, so every object it returns is one the
SDK can parse by construction. They are imported here once so that the rest of the code does not depend
on where the SDK keeps them.
"""

from __future__ import annotations

from openai.types import FileDeleted, FileObject, VectorStore, VectorStoreDeleted
from openai.types.admin.organization import Project
from openai.types.admin.organization.projects import APIKeyDeleteResponse as ProjectApiKeyDeleted
from openai.types.admin.organization.projects import ProjectAPIKey as ProjectApiKey
from openai.types.admin.organization.projects.project_api_key import Owner as ProjectApiKeyOwner
from openai.types.admin.organization.projects.project_api_key import (
    OwnerServiceAccount as ServiceAccountOwner,
)
from openai.types.admin.organization.projects.service_account_create_response import (
    APIKey as ServiceAccountKey,
)
from openai.types.admin.organization.projects.service_account_create_response import (
    ServiceAccountCreateResponse as ServiceAccountCreated,
)
from openai.types.beta import Assistant, AssistantDeleted, Thread, ThreadDeleted
from openai.types.beta.threads import Message, MessageDeleted, Run
from openai.types.beta.threads.runs import RunStep
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch, VectorStoreFileDeleted

__all__ = [
    "Assistant",
    "AssistantDeleted",
    "FileDeleted",
    "FileObject",
    "Message",
    "MessageDeleted",
    "Project",
    "ProjectApiKey",
    "ProjectApiKeyDeleted",
    "ProjectApiKeyOwner",
    "Run",
    "RunStep",
    "ServiceAccountCreated",
    "ServiceAccountKey",
    "ServiceAccountOwner",
    "Thread",
    "ThreadDeleted",
    "VectorStore",
    "VectorStoreDeleted",
    "VectorStoreFile",
    "VectorStoreFileBatch",
    "VectorStoreFileDeleted",
]
