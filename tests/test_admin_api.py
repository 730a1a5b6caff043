"""Key management over HTTP: OpenAI's Admin API (projects, service accounts, project API keys), driven
by the SDK's own admin client, as a script that manages OpenAI projects would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.harness import Server, backend_server

# The 1.x SDK line has no admin client; the endpoints are the same whatever the client.
pytest.importorskip("openai.types.admin", reason="the SDK has no admin client before 2.x")

ADMIN_KEY = "sk-admin-test-0123456789"


@dataclass
class Admin:
    server: Server
    sdk: openai.OpenAI  # with the admin key

    def client(self, api_key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=api_key, max_retries=0, timeout=15)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    root = tmp_path_factory.mktemp(f"admin-{request.param}")
    with backend_server(request.param, root, env={"ASSISTD_ADMIN_KEY": ADMIN_KEY}) as server:
        sdk = openai.OpenAI(
            base_url=f"{server.url}/v1", api_key="unused", admin_api_key=ADMIN_KEY, max_retries=0, timeout=15
        )
        yield Admin(server, sdk)
        sdk.close()


def test_a_project_key_made_over_http_opens_the_api_until_it_is_deleted(admin: Admin) -> None:
    projects = admin.sdk.admin.organization.projects
    project = projects.create(name="research")
    assert project.object == "organization.project"
    assert project.id.startswith("proj_")
    assert (project.name, project.status, project.archived_at) == ("research", "active", None)
    assert projects.retrieve(project.id) == project
    assert project.id in [p.id for p in projects.list()]

    account = projects.service_accounts.create(project.id, name="notebook")
    assert account.object == "organization.project.service_account"
    assert (account.name, account.role) == ("notebook", "member")
    assert account.api_key is not None
    secret = account.api_key.value
    assert secret.startswith("sk-proj-")
    assert account.api_key.object == "organization.project.service_account.api_key"

    # The key acts in its project at once (the server is closed now that a key exists).
    with admin.client(secret) as user:
        made = user.beta.assistants.create(model="gpt-4o", name="in research")
        assert [a.id for a in user.beta.assistants.list()] == [made.id]
    anonymous = httpx.get(f"{admin.server.url}/v1/assistants")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_api_key"

    keys = projects.api_keys.list(project.id).data
    assert [key.id for key in keys] == [account.api_key.id]
    key = keys[0]
    assert key.object == "organization.project.api_key"
    assert key.name == "notebook"
    assert key.redacted_value == secret[:12] + "..."
    assert key.owner.type == "service_account"
    assert key.owner.service_account is not None
    assert key.owner.service_account.name == "notebook"
    assert key.last_used_at is not None  # the assistant above
    assert projects.api_keys.retrieve(key.id, project_id=project.id) == key

    deleted = projects.api_keys.delete(key.id, project_id=project.id)
    assert (deleted.object, deleted.id, deleted.deleted) == (
        "organization.project.api_key.deleted",
        key.id,
        True,
    )
    with admin.client(secret) as user, pytest.raises(openai.AuthenticationError) as refused:
        user.beta.assistants.list()
    assert refused.value.code == "invalid_api_key"
    assert projects.api_keys.list(project.id).data == []
    with pytest.raises(openai.NotFoundError):
        projects.api_keys.delete(key.id, project_id=project.id)


def test_keys_of_a_project_are_listed_in_pages_and_stay_in_their_project(admin: Admin) -> None:
    projects = admin.sdk.admin.organization.projects
    mine = projects.create(name="paged")
    other = projects.create(name="other")
    made = [projects.service_accounts.create(mine.id, name=f"k{index}") for index in range(3)]
    foreign = projects.service_accounts.create(other.id, name="foreign")
    ids = [account.id for account in made]

    # Pages split one stable order (keys made within a second have no order of their own).
    whole = [key.id for key in projects.api_keys.list(mine.id, limit=100).data]
    assert sorted(whole) == sorted(ids)
    first = projects.api_keys.list(mine.id, limit=2)
    assert [key.id for key in first.data] == whole[:2]
    assert first.has_more is True
    assert [key.id for key in projects.api_keys.list(mine.id, limit=2)] == whole  # the SDK follows the pages
    # Another project's key is not found through this project.
    with pytest.raises(openai.NotFoundError):
        projects.api_keys.retrieve(foreign.id, project_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        projects.api_keys.delete(foreign.id, project_id=mine.id)
    assert [key.id for key in projects.api_keys.list(other.id)] == [foreign.id]


def test_bad_admin_requests_are_4xx_naming_the_param(admin: Admin) -> None:
    projects = admin.sdk.admin.organization.projects
    with pytest.raises(openai.NotFoundError) as missing:
        projects.retrieve("proj_nothere")
    assert "proj_nothere" in missing.value.message
    with pytest.raises(openai.NotFoundError):
        projects.service_accounts.create("proj_nothere", name="x")
    projects.create(name="twice")
    with pytest.raises(openai.BadRequestError) as duplicate:
        projects.create(name="twice")
    assert duplicate.value.param == "name"
    project = projects.list().data[0]
    with pytest.raises(openai.BadRequestError) as expiring:
        projects.service_accounts.create(project.id, name="x", expires_in_seconds=3600)
    assert expiring.value.param == "expires_in_seconds"
    with pytest.raises(openai.BadRequestError) as empty:
        projects.create(name="")
    assert empty.value.param == "name"


def test_only_the_admin_key_opens_key_management(
    admin: Admin, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = f"{admin.server.url}/v1/organization/projects"
    for headers in ({}, {"Authorization": "Bearer sk-admin-wrong"}, {"Authorization": "Bearer sk-test"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert ADMIN_KEY not in refused.text
    # The admin key is not a project key: once keys exist, it opens nothing else.
    projects = admin.sdk.admin.organization.projects
    projects.service_accounts.create(projects.create(name="closing").id, name="closer")
    with admin.client(ADMIN_KEY) as holder, pytest.raises(openai.AuthenticationError):
        holder.beta.assistants.list()


def test_key_management_is_off_without_an_admin_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    with backend_server("sqlite", tmp_path_factory.mktemp("no-admin")) as server:
        refused = httpx.get(
            f"{server.url}/v1/organization/projects", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert refused.status_code == 401
        assert "ASSISTD_ADMIN_KEY" in refused.json()["error"]["message"]
        # Still open for the API itself: no key exists.
        assert httpx.get(f"{server.url}/v1/assistants").status_code == 200


def test_key_management_is_not_replayed_for_an_idempotency_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Idempotency-Key does not cover key management: replaying a new key would mean keeping its secret
    in clear, which the server never does. So a retry is served afresh."""
    root = tmp_path_factory.mktemp("admin-retry")
    env = {"ASSISTD_ADMIN_KEY": ADMIN_KEY}
    with (
        backend_server("sqlite", root, env=env) as server,
        openai.OpenAI(
            base_url=f"{server.url}/v1", api_key="unused", admin_api_key=ADMIN_KEY, max_retries=0
        ) as sdk,
    ):
        projects = sdk.admin.organization.projects
        headers = {"Idempotency-Key": "same-key-twice"}
        # The server is open (no key yet): a covered retry would be replayed, the first project again.
        project = projects.create(name="retried", extra_headers=headers)
        with pytest.raises(openai.BadRequestError) as again:
            projects.create(name="retried", extra_headers=headers)
        assert again.value.param == "name"

        first = projects.service_accounts.create(project.id, name="ci", extra_headers=headers)
        second = projects.service_accounts.with_raw_response.create(
            project.id, name="ci", extra_headers=headers
        )
        assert "idempotent-replayed" not in second.headers
        made = second.parse()
        assert first.api_key is not None
        assert made.api_key is not None
        assert first.api_key.value != made.api_key.value
        listed = sorted(key.id for key in projects.api_keys.list(project.id))
        assert listed == sorted([first.api_key.id, made.api_key.id])
