"""Which backend, and which of its models, answers a public model name.

Routes come from the configuration file (see ``routing_config``), tried in order; then the built-in
ones: names starting with ``scripted`` go to the scripted model and ``smollm2-135m-instruct`` to the
embedded model. A name no route maps goes to the default model, under the name the client asked for,
unless strict mode answers ``model_not_found``. Backends are built on first use, so a configured but
unused one (an embedded model, say) costs nothing.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from assistd import metrics, tracing
from assistd.backends.base import BackendError, ChatBackend, ChatRequest, Chunk
from assistd.backends.routing_config import (
    BackendConfig,
    ConfigError,
    EmbeddedBackendConfig,
    OpenAIBackendConfig,
    RouteConfig,
    ScriptedBackendConfig,
    load,
)
from assistd.backends.scripted import ScriptedBackend
from assistd.config import Settings

logger = logging.getLogger("assistd.backends")

EMBEDDED_MODEL = "smollm2-135m-instruct"
SCRIPTED_MODEL = "scripted"
UPSTREAM_BACKEND = "upstream"


@dataclass(frozen=True, slots=True)
class Limits:
    context_window: int | None = None
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a model name goes: the backend, the model id it knows, and the model's limits."""

    backend: ChatBackend
    model: str
    limits: Limits
    backend_name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """The model's answer to ``request``: every model call goes through here, and is measured (and
        traced, when tracing is on)."""
        chunks = self.backend.stream(request)
        if tracing.enabled():
            chunks = tracing.model_call(self.backend_name, request, chunks)
        return metrics.measured(self.backend_name, chunks)


class ModelNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: str
    backend: str
    model: str | None = None  # None: the requested name
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def of(cls, config: RouteConfig) -> _Route:
        return cls(
            config.name, config.backend, config.model, Limits(config.context_window, config.max_output_tokens)
        )

    @property
    def is_pattern(self) -> bool:
        return any(char in self.pattern for char in "*?[")

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)


class _Lazy:
    """A backend built the first time it is needed."""

    def __init__(self, build: Callable[[], ChatBackend]) -> None:
        self._build = build
        self.instance: ChatBackend | None = None

    def get(self) -> ChatBackend:
        if self.instance is None:
            try:
                self.instance = self._build()
            except ValueError as error:
                # A setting checked only now (an upstream's proxy from the environment, say): the
                # operator's to fix, said to the caller in its words, not a bare 500.
                raise BackendError(f"the model's backend cannot be used: {error}") from error
        return self.instance


def _builder(config: BackendConfig) -> Callable[[], ChatBackend]:
    if isinstance(config, OpenAIBackendConfig):

        def upstream() -> ChatBackend:
            from assistd.backends.upstream import UpstreamBackend

            return UpstreamBackend(
                config.base_url,
                config.resolved_api_key(),
                timeout=config.timeout,
                connect_timeout=config.connect_timeout,
                max_retries=config.max_retries,
            )

        return upstream
    if isinstance(config, EmbeddedBackendConfig):

        def embedded() -> ChatBackend:
            # Imported here: loading llama.cpp is only worth it when a route uses it.
            from assistd.backends.embedded import EmbeddedBackend

            return EmbeddedBackend(
                config.model_path, context_window=config.context_window, threads=config.threads
            )

        return embedded
    return ScriptedBackend


class ModelRouter:
    def __init__(
        self,
        backends: dict[str, BackendConfig],
        routes: list[_Route],
        default: _Route | None,
        *,
        default_name: str | None,
    ) -> None:
        self._configs = backends
        self._backends = {name: _Lazy(_builder(config)) for name, config in backends.items()}
        self._routes = routes
        self._default = default  # None: strict mode
        self.default_name = default_name
        self.created = int(time.time())

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRouter:
        config = load(settings.config)
        backends: dict[str, BackendConfig] = {
            "scripted": ScriptedBackendConfig(type="scripted"),
            "embedded": EmbeddedBackendConfig(type="embedded"),
        }
        backends.update(config.backends)
        if settings.upstream_base_url:
            api_key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
            try:
                backends[UPSTREAM_BACKEND] = OpenAIBackendConfig(
                    type="openai", base_url=settings.upstream_base_url, api_key=api_key
                )
            except ValidationError as error:
                problem = error.errors()[0]["msg"]
                raise ConfigError(f"ASSISTD_UPSTREAM_BASE_URL: {problem}") from None
        routes = [_Route.of(route) for route in config.models]
        routes += [_Route(f"{SCRIPTED_MODEL}*", "scripted"), _Route(EMBEDDED_MODEL, "embedded")]

        default_name = settings.default_model or config.default_model
        default = _default_route(default_name, routes, backends, upstream=bool(settings.upstream_base_url))
        strict = settings.strict_models or config.strict
        return cls(backends, routes, None if strict else default, default_name=default_name or None)

    def resolve(self, name: str) -> Target:
        """The target of a model name; ``ModelNotFound`` in strict mode for a name no route maps."""
        route = next((route for route in self._routes if route.matches(name)), self._default)
        if route is None:
            raise ModelNotFound(name)
        return Target(self._backends[route.backend].get(), route.model or name, route.limits, route.backend)

    def listed(self) -> list[tuple[str, str]]:
        """The model names to list, with the backend that owns each: every exact route name, and the
        default model's."""
        names: dict[str, str] = {}
        if self.default_name and self._default is not None:
            names[self.default_name] = self._default.backend
        for route in self._routes:
            if not route.is_pattern:
                names.setdefault(route.pattern, route.backend)
            elif route.pattern == f"{SCRIPTED_MODEL}*":
                names.setdefault(SCRIPTED_MODEL, route.backend)
        return sorted(names.items())

    async def aclose(self) -> None:
        for lazy in self._backends.values():
            if lazy.instance is not None:
                try:
                    await lazy.instance.aclose()
                except Exception:
                    logger.exception("closing a model backend failed")


def _default_route(
    name: str | None, routes: list[_Route], backends: dict[str, BackendConfig], *, upstream: bool
) -> _Route:
    """What answers names no route maps."""
    if not name:
        # With an upstream, the client's own model names go to it unchanged (gpt-4o to OpenAI).
        return _Route("*", UPSTREAM_BACKEND) if upstream else _Route(EMBEDDED_MODEL, "embedded")
    for route in routes:
        if route.matches(name):
            return _Route(name, route.backend, route.model or name, route.limits)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"the default model {name!r}: no such GGUF file")
        backends["default-gguf"] = EmbeddedBackendConfig(type="embedded", model_path=path)
        return _Route(name, "default-gguf", path.stem)
    if upstream:
        return _Route(name, UPSTREAM_BACKEND, name)
    raise ConfigError(
        f"the default model {name!r} (ASSISTD_DEFAULT_MODEL, or default_model in ASSISTD_CONFIG) is "
        f"not a configured model: use {SCRIPTED_MODEL!r}, "
        f"{EMBEDDED_MODEL!r}, a path to a .gguf file, a model of ASSISTD_CONFIG, or set "
        "ASSISTD_UPSTREAM_BASE_URL to send it to an OpenAI-compatible server."
    )
