"""/v1/models and model routing: the default (lenient) mode, strict mode, a TOML configuration with glob
routes and per-model limits, and configurations the server refuses to start with."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import SERVER_PYTHON, Server, free_port
from tests.openapi import assert_schema
from tests.run_support import make_sdk, wait_for_run

SPEC = "chat-completions.yaml"
EXIT_TIMEOUT_S = 30.0


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def error_body(error: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(error.body, dict), error.body
    return error.body


def write_config(directory: Path, text: str) -> Path:
    path = directory / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the default mode ------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_models_list_and_retrieve(server: Server, client: openai.OpenAI) -> None:
    page = client.models.list()
    assert page.object == "list"
    models = {model.id: model for model in page}
    assert "scripted" in models
    for model in models.values():
        assert model.object == "model"
        assert model.owned_by
        assert model.created > 0
    # The default model is listed, owned by the backend that runs it.
    assert models["scripted"].owned_by == "scripted"

    scripted = client.models.retrieve("scripted")
    assert (scripted.id, scripted.object, scripted.owned_by) == ("scripted", "model", "scripted")
    assert scripted.created == models["scripted"].created

    with httpx.Client(base_url=server.url) as http:
        listed = http.get("/v1/models")
        assert listed.status_code == 200
        assert_schema("ListModelsResponse", listed.json(), spec=SPEC)
        one = http.get("/v1/models/scripted")
        assert one.status_code == 200
        assert_schema("Model", one.json(), spec=SPEC)
        assert one.json() == {
            "id": "scripted",
            "object": "model",
            "created": scripted.created,
            "owned_by": "scripted",
        }


@pytest.mark.backend("sqlite")
def test_any_model_name_is_retrievable_in_the_default_mode(client: openai.OpenAI) -> None:
    listed = {model.id for model in client.models.list()}
    for name in ("gpt-4o", "gpt-3.5-turbo", "my-own-fine-tune"):
        assert name not in listed
        model = client.models.retrieve(name)
        # Answered by the default model (the scripted one here), under the name asked for.
        assert (model.id, model.object, model.owned_by) == (name, "model", "scripted")
        completion = client.chat.completions.create(model=name, messages=user("hi"))  # type: ignore[arg-type]
        assert completion.model == name
        assert completion.choices[0].message.content == "You said: hi"


# -- strict mode -----------------------------------------------------------------------------------

STRICT_CONFIG = """
[[models]]
name = "my-model"
backend = "scripted"
"""


def test_strict_mode_answers_only_routed_names(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server(
        ASSISTD_STRICT_MODELS="true", ASSISTD_CONFIG=str(write_config(tmp_path, STRICT_CONFIG))
    )
    with make_sdk(server) as client:
        # An unknown name: 404 model_not_found, streamed or not, before anything is answered.
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="nope", messages=user("hi"))
        assert caught.value.status_code == 404
        assert (caught.value.type, caught.value.param, caught.value.code) == (
            "invalid_request_error",
            "model",
            "model_not_found",
        )
        assert error_body(caught.value)["message"] == (
            "The model `nope` does not exist or you do not have access to it."
        )
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="nope", messages=user("hi"), stream=True)
        assert caught.value.code == "model_not_found"

        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("nope")
        assert (caught.value.param, caught.value.code) == ("model", "model_not_found")

        # The routed name works and is listed; built-in routes still answer.
        listed = {model.id: model.owned_by for model in client.models.list()}
        assert listed["my-model"] == "scripted"
        assert listed["scripted"] == "scripted"
        assert "nope" not in listed
        assert client.models.retrieve("my-model").owned_by == "scripted"
        completion = client.chat.completions.create(model="my-model", messages=user("hi"))  # type: ignore[arg-type]
        assert completion.model == "my-model"
        assert completion.choices[0].message.content == "You said: hi"
        assert client.chat.completions.create(model="scripted", messages=user("hi")).model == "scripted"  # type: ignore[arg-type]

        # Assistants take any model name; a run on one no route maps fails, saying why.
        assistant = client.beta.assistants.create(model="nope", name="unroutable")
        assert assistant.model == "nope"
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        run = wait_for_run(client, thread.id, run.id)
        assert run.status == "failed"
        assert run.model == "nope"
        assert run.last_error is not None
        assert run.last_error.code == "invalid_prompt"
        assert run.last_error.message == "The model 'nope' does not exist."
        assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["user"]

        # The same assistant on a routed model, chosen for the run, works.
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, model="my-model")
        run = wait_for_run(client, thread.id, run.id)
        assert (run.status, run.model, run.last_error) == ("completed", "my-model", None)


# -- a configuration file with glob routes, a default model and limits -------------------------------

ROUTED_CONFIG = """
default_model = "house"

[backends.house-backend]
type = "scripted"

[backends.gpt-backend]
type = "scripted"

[[models]]
name = "house"
backend = "house-backend"

[[models]]
name = "tiny"
backend = "scripted"
context_window = 20
max_output_tokens = 5

[[models]]
name = "gpt-*"
backend = "gpt-backend"
model = "scripted-for-gpt"
"""


def test_config_file_routes_globs_default_model_and_limits(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # An empty ASSISTD_DEFAULT_MODEL leaves the choice to the file's default_model.
    server = start_server(ASSISTD_DEFAULT_MODEL="", ASSISTD_CONFIG=str(write_config(tmp_path, ROUTED_CONFIG)))
    with make_sdk(server) as client:
        listed = {model.id: model.owned_by for model in client.models.list()}
        # Exact names and the default model are listed; patterns are not.
        assert listed["house"] == "house-backend"
        assert listed["tiny"] == "scripted"
        assert not any("*" in name for name in listed)

        # The glob route takes every gpt-* name, which answers under the name asked for.
        for name in ("gpt-4o", "gpt-3.5-turbo"):
            assert client.models.retrieve(name).owned_by == "gpt-backend"
            completion = client.chat.completions.create(model=name, messages=user("routed"))  # type: ignore[arg-type]
            assert completion.model == name
            assert completion.choices[0].message.content == "You said: routed"

        # A name no route maps goes to the file's default model.
        assert client.models.retrieve("claude-3-opus").owned_by == "house-backend"
        completion = client.chat.completions.create(model="claude-3-opus", messages=user("default"))  # type: ignore[arg-type]
        assert completion.model == "claude-3-opus"
        assert completion.choices[0].message.content == "You said: default"

        # Per-model limits: max_output_tokens and the context window.
        at_limit = client.chat.completions.create(
            model="tiny",  # type: ignore[arg-type]
            messages=user("one two three four five six"),  # 3 + 6 tokens
            max_tokens=5,
        )
        assert at_limit.choices[0].message.content == "You said: one two"
        assert at_limit.choices[0].finish_reason == "length"
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny", messages=user("hi"), max_tokens=6)  # type: ignore[arg-type]
        assert (caught.value.param, caught.value.code) == ("max_tokens", None)
        assert "at most 5" in error_body(caught.value)["message"]
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny", messages=user("hi"), max_completion_tokens=6)  # type: ignore[arg-type]
        assert caught.value.param == "max_completion_tokens"

        # 3 + 17 tokens fill the window of 20 exactly; one more token, or any completion, does not fit.
        seventeen = " ".join(f"w{i}" for i in range(17))
        fits = client.chat.completions.create(model="tiny", messages=user(seventeen))  # type: ignore[arg-type]
        assert fits.usage is not None
        assert fits.usage.prompt_tokens == 20
        for messages, max_tokens in ((user(seventeen + " w17"), None), (user(seventeen), 1)):
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(
                    model="tiny",  # type: ignore[arg-type]
                    messages=messages,  # type: ignore[arg-type]
                    **({"max_tokens": max_tokens} if max_tokens else {}),  # type: ignore[arg-type]
                )
            assert (caught.value.type, caught.value.param, caught.value.code) == (
                "invalid_request_error",
                "messages",
                "context_length_exceeded",
            )
            assert "maximum context length is 20 tokens" in error_body(caught.value)["message"]


# -- configurations the server refuses -------------------------------------------------------------


def start_and_expect_exit(data_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``assistd serve`` started as an operator would, with only these ASSISTD_* settings."""
    data_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")},
        "ASSISTD_DATA_DIR": str(data_dir),
        **env,
    }
    return subprocess.Popen(
        [SERVER_PYTHON, "-m", "assistd", "serve", "--port", str(free_port())],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_refused(cases: dict[str, tuple[dict[str, str], list[str]]], tmp_path: Path) -> None:
    """Starts every case at once; each must exit with code 2 and say on stderr what is wrong."""
    processes = {name: start_and_expect_exit(tmp_path / name, env) for name, (env, _) in cases.items()}
    problems: list[str] = []
    try:
        for name, process in processes.items():
            try:
                _, stderr = process.communicate(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                problems.append(f"{name}: still running after {EXIT_TIMEOUT_S} s (it should not start)")
                continue
            if process.returncode != 2:
                problems.append(f"{name}: exit code {process.returncode}, not 2; stderr:\n{stderr}")
            missing = [piece for piece in cases[name][1] if piece not in stderr]
            if missing:
                problems.append(f"{name}: stderr does not say {missing}; stderr:\n{stderr}")
            if "Traceback" in stderr:
                problems.append(f"{name}: a traceback instead of a message:\n{stderr}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert not problems, "\n\n".join(problems)


def test_broken_config_files_stop_the_server(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('default_model = "unterminated\n', encoding="utf-8")
    unknown_backend = tmp_path / "unknown-backend.toml"
    unknown_backend.write_text('[[models]]\nname = "gpt-*"\nbackend = "ollama"\n', encoding="utf-8")
    missing = tmp_path / "missing.toml"
    relative_url = tmp_path / "relative-url.toml"
    relative_url.write_text(
        '[backends.up]\ntype = "openai"\nbase_url = "localhost:11434/v1"\n', encoding="utf-8"
    )
    scripted = {"ASSISTD_DEFAULT_MODEL": "scripted"}
    assert_refused(
        {
            "bad-toml": (
                {**scripted, "ASSISTD_CONFIG": str(bad_toml)},
                ["assistd:", str(bad_toml), "is not valid TOML", "line 1"],
            ),
            "unknown-backend": (
                {**scripted, "ASSISTD_CONFIG": str(unknown_backend)},
                ["assistd:", str(unknown_backend), "'ollama'", "not defined", "models[0]"],
            ),
            "missing-file": (
                {**scripted, "ASSISTD_CONFIG": str(missing)},
                ["assistd:", "cannot read ASSISTD_CONFIG", str(missing)],
            ),
            # Base URLs without a scheme: refused at the start, not with a 500 at the first request.
            "base-url-in-file": (
                {**scripted, "ASSISTD_CONFIG": str(relative_url)},
                ["assistd:", str(relative_url), "must be http(s)://host", "'localhost:11434/v1'"],
            ),
            "base-url-in-env": (
                {**scripted, "ASSISTD_UPSTREAM_BASE_URL": "ftp://models.example/v1"},
                ["assistd: ASSISTD_UPSTREAM_BASE_URL", "must be http(s)://host", "'ftp://models.example/v1'"],
            ),
        },
        tmp_path,
    )


def test_unusable_default_model_stops_the_server(tmp_path: Path) -> None:
    assert_refused(
        {
            "unknown-name": (
                {"ASSISTD_DEFAULT_MODEL": "no-such-model"},
                ["assistd:", "the default model 'no-such-model'", "is not a configured model"],
            ),
            "missing-gguf": (
                {"ASSISTD_DEFAULT_MODEL": "/no/such/file.gguf"},
                ["assistd:", "the default model '/no/such/file.gguf': no such GGUF file"],
            ),
            "file-default-unknown": (
                {
                    "ASSISTD_CONFIG": str(write_config(tmp_path, 'default_model = "no-such-model"\n')),
                },
                ["assistd:", "'no-such-model'", "default_model in ASSISTD_CONFIG", "not a configured model"],
            ),
        },
        tmp_path,
    )
