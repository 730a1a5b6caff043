"""The model routing configuration: a TOML file (``ASSISTD_CONFIG``) and the one-line settings.

The file, every part optional::

    default_model = "llama"        # answers names no route maps (ASSISTD_DEFAULT_MODEL overrides)
    strict = false                 # true: such names get 404 model_not_found instead

    [backends.ollama]
    type = "openai"                # openai | embedded | scripted
    base_url = "http://127.0.0.1:11434/v1"
    api_key_env = "OLLAMA_API_KEY" # or api_key = "..."
    timeout = 600
    max_retries = 2

    [backends.local]
    type = "embedded"
    model_path = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"   # default: the bundled SmolLM2
    context_window = 8192

    [[models]]
    name = "gpt-*"                 # an exact name or a glob pattern
    backend = "ollama"
    model = "llama3.1:8b"          # the backend's model id; default: the requested name
    context_window = 8192          # per-model limits, both optional
    max_output_tokens = 2048

Routes are tried in file order; the first whose ``name`` matches wins.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistd.backends.http import upstream_url


class ConfigError(Exception):
    """The routing configuration cannot be used; the message says what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenAIBackendConfig(_Strict):
    type: Literal["openai"]
    base_url: str
    api_key: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)

    @field_validator("base_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        upstream_url(value, "")  # ValueError, with what is wrong, unless http(s)://host...
        return value

    def resolved_api_key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return self.api_key


class EmbeddedBackendConfig(_Strict):
    type: Literal["embedded"]
    model_path: Path | None = None
    context_window: int = Field(default=4096, ge=256)
    threads: int | None = Field(default=None, ge=1)


class ScriptedBackendConfig(_Strict):
    type: Literal["scripted"]


BackendConfig = Annotated[
    OpenAIBackendConfig | EmbeddedBackendConfig | ScriptedBackendConfig, Field(discriminator="type")
]


class RouteConfig(_Strict):
    name: str = Field(min_length=1)
    backend: str
    model: str | None = None
    context_window: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)


class RoutingConfig(_Strict):
    default_model: str | None = None
    strict: bool = False
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    models: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_name_backends(self) -> RoutingConfig:
        for index, route in enumerate(self.models):
            if route.backend not in self.backends and route.backend not in BUILTIN_BACKENDS:
                raise ValueError(
                    f"models[{index}] ({route.name!r}) names backend {route.backend!r}, which is not "
                    f"defined; defined: {sorted(self.backends) + sorted(BUILTIN_BACKENDS)}"
                )
        return self


# Backends that exist without configuration.
BUILTIN_BACKENDS = frozenset({"scripted", "embedded"})


def load(path: Path | None) -> RoutingConfig:
    if path is None:
        return RoutingConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read ASSISTD_CONFIG {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"ASSISTD_CONFIG {path} is not valid TOML: {error}") from error
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: "
            + str(problem["msg"]).removeprefix("Value error, ")
            for problem in error.errors()
        )
        raise ConfigError(f"ASSISTD_CONFIG {path}: {problems}") from error
