"""OpenTelemetry tracing, off unless the process is configured for it the standard way.

It is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or
``OTEL_TRACES_EXPORTER`` names an exporter, and ``OTEL_SDK_DISABLED`` is not ``true``. Everything else
(service name, sampler, headers, batching, span limits) the SDK reads from its own ``OTEL_*`` variables.
It needs the ``otel`` extra.

This is the only module that imports OpenTelemetry. The rest of assistd opens spans with ``span`` and
``tool``, and model calls pass through ``model_call``; while tracing is off these cost a function call
and a shared no-op object, since they sit on the path of every run.

Traced: HTTP requests (FastAPI's own server spans, named by route template), each execution of a run
by a worker (``assistd.run``), each model call (``chat MODEL``) and each call of the server's tools
(``execute_tool NAME``), and HTTP calls to upstream models and embedding servers (aiohttp). A run's span
starts a trace of its own: the worker that executes it may be another process than the one whose
request created it, long after it; ``assistd.run_id`` finds it, and it links to the span of the request
that queued the run (its creation, or the one that gave it its tool outputs), whose traceparent the
run's row keeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from assistd import __version__
from assistd.backends.base import Accepted, ChatRequest, Chunk, Finish

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Link, Tracer
    from opentelemetry.trace import Span as OtelSpan

logger = logging.getLogger("assistd.tracing")

AttributeValue = str | bool | int | float

SERVICE_NAME = "assistd"
SHUTDOWN_SECONDS = 5.0  # the longest a stopping process waits for its last spans to be exported
# The exporter of the name "otlp", by OTLP protocol: entry points of opentelemetry_traces_exporter.
_OTLP_EXPORTERS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_set_up = False


class Span:
    """A span as the code that opens it sees it. This one, shared, is what tracing off hands out."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        return None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        return None

    def set_error(self, error_type: str, description: str) -> None:
        """The operation failed (without an exception reaching the span: those are recorded anyway)."""
        return None


OFF = Span()


class _Recording(Span):
    """A span of the tracer, current in its block, so that the spans opened within are its children."""

    __slots__ = ("_scope", "_span")

    def __init__(
        self, tracer: Tracer, name: str, attributes: Mapping[str, AttributeValue], links: Sequence[Link] = ()
    ) -> None:
        self._scope: AbstractContextManager[OtelSpan] = tracer.start_as_current_span(
            name, attributes=attributes, links=links
        )

    def __enter__(self) -> Span:
        self._span = self._scope.__enter__()
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self._scope.__exit__(kind, error, traceback)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self._span.set_attributes(attributes)

    def set_error(self, error_type: str, description: str) -> None:
        from opentelemetry.trace import StatusCode

        self._span.set_attribute("error.type", error_type)
        self._span.set_status(StatusCode.ERROR, description)


def enabled() -> bool:
    return _tracer is not None


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None, *, link: str | None = None
) -> Span:
    """A span for a ``with`` block: ``with tracing.span("name", {...}) as span: ...``; ``link``: the
    traceparent of a span it follows from, in another trace (see ``traceparent``)."""
    if _tracer is None:
        return OFF
    return _Recording(_tracer, name, attributes or {}, _links(link))


def traceparent() -> str | None:
    """The current span as a W3C ``traceparent``, to be kept for a span of later work to link to; None
    while tracing is off or outside any span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _links(traceparent: str | None) -> list[Link]:
    """The link to the span ``traceparent`` names; none if it is None or malformed."""
    if traceparent is None:
        return []
    from opentelemetry.trace import Link, SpanContext, TraceFlags

    try:
        _version, trace_id, span_id, flags = traceparent.split("-")
        context = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
    except ValueError:
        return []
    return [Link(context)] if context.is_valid else []


def tool(name: str, call_id: str) -> Span:
    """A span of one call of the server's own tools (file_search, code_interpreter), named and described
    as OpenTelemetry's GenAI conventions say."""
    if _tracer is None:
        return OFF
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
    }
    return _Recording(_tracer, f"execute_tool {name}", attributes)


async def model_call(
    backend: str, request: ChatRequest, chunks: AsyncIterator[Chunk]
) -> AsyncIterator[Chunk]:
    """A model call's chunks, passed through, in a span of the call (``chat MODEL``, GenAI conventions)
    with its usage and finish reason. Only while tracing is on: the caller checks ``enabled()``."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode

    assert _tracer is not None
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request.model,
        "assistd.backend": backend,
    }
    for key, value in (
        ("gen_ai.request.max_tokens", request.max_tokens),
        ("gen_ai.request.temperature", request.temperature),
        ("gen_ai.request.top_p", request.top_p),
    ):
        if value is not None:
            attributes[key] = value
    call = _tracer.start_span(f"chat {request.model}", kind=SpanKind.CLIENT, attributes=attributes)
    first = True
    try:
        while True:
            # Current only while the backend works, never across the yield: the consumer's code between
            # chunks is not part of the call, and a context attached here and detached after a yield
            # could be detached in another context (a generator closed by another task).
            with trace.use_span(call, record_exception=False, set_status_on_exception=False):
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
            if first and not isinstance(chunk, Accepted):  # the model's first output, not its 200
                call.add_event("first chunk")
                first = False
            if isinstance(chunk, Finish):
                call.set_attributes(
                    {
                        "gen_ai.response.finish_reasons": [chunk.reason],
                        "gen_ai.usage.input_tokens": chunk.usage.prompt_tokens,
                        "gen_ai.usage.output_tokens": chunk.usage.completion_tokens,
                    }
                )
            yield chunk
    except Exception as error:
        call.record_exception(error)
        # BackendError's code is the run's last_error.code: the same words in both places.
        call.set_attribute("error.type", str(getattr(error, "code", type(error).__qualname__)))
        call.set_status(StatusCode.ERROR, str(error))
        raise
    finally:
        call.end()
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


# -- setup ------------------------------------------------------------------------------------------


def _exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters the environment asks for; empty: tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if named:
        return [name.strip() for name in named.split(",") if name.strip() and name.strip().lower() != "none"]
    # The specification's default exporter is otlp; only an endpoint says that it is meant for this process.
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return ["otlp"] if endpoint else []


def setup() -> None:
    """Turn tracing on if the environment asks for it. Once per process: the tracer provider is global,
    and OpenTelemetry lets it be set only once."""
    global _set_up, _tracer, _provider
    if _set_up:
        return
    _set_up = True
    names = _exporter_names()
    if not names:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        # A warning, not a refusal to start: OTEL_* variables are often set for every service of a
        # cluster or namespace (by a platform, or an operator's injection), not for assistd alone. A
        # server that would not start for want of its traces is a worse outage than the missing traces.
        logger.warning(
            "OpenTelemetry tracing is configured (OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_*ENDPOINT) but "
            "the OpenTelemetry SDK is not installed: running WITHOUT tracing. Install the extra: "
            "pip install 'assistd[otel]'."
        )
        return
    exporters = [exporter for name in names if (exporter := _exporter(name)) is not None]
    if not exporters:
        return
    if os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").strip().lower() == "true":
        logger.warning(
            "FASTAPI_OTEL_AUTO_CONFIGURE=true makes FastAPI add trace exporters of its own to assistd's, "
            "so every span is exported twice: unset it."
        )
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names the service.
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    # The sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) and the span limits come from the
    # environment; so do the batch processor's (OTEL_BSP_*) and the exporters' settings.
    # Not shut down at exit by the SDK: ``shutdown`` does it, bounded in time.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_upstream_calls()
    _provider = provider
    _tracer = provider.get_tracer("assistd", __version__)
    logger.info(
        "tracing on: service %s, exporting with %s",
        resource.attributes.get("service.name"),
        ", ".join(type(exporter).__name__ for exporter in exporters),
    )


def _exporter(name: str) -> SpanExporter | None:
    """The exporter OTEL_TRACES_EXPORTER calls ``name``, found as the SDK finds it (by its entry point),
    made from its environment variables; None, said, if it is not installed."""
    entry, wanted = name, f"the trace exporter {name!r} (OTEL_TRACES_EXPORTER)"
    if name == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"  # the specification's default, and the exporter the otel extra brings
        ).strip()
        if protocol not in _OTLP_EXPORTERS:
            logger.warning(
                "OTLP protocol %r is not supported (http/protobuf or grpc): no traces are exported",
                protocol,
            )
            return None
        entry, wanted = _OTLP_EXPORTERS[protocol], f"the OTLP trace exporter for protocol {protocol}"
    found = list(entry_points(group="opentelemetry_traces_exporter", name=entry))
    if not found:
        logger.warning("%s is not installed: no traces are exported with it", wanted)
        return None
    try:
        exporter: SpanExporter = found[0].load()()
    except Exception as error:
        logger.warning("%s could not be made (%s): no traces are exported with it", wanted, error)
        return None
    return exporter


def _instrument_upstream_calls() -> None:
    """Calls to upstream models and embedding servers: a client span each, and the trace context in
    their headers, so an upstream that traces joins the trace. Their aiohttp sessions are made by the
    first request (``backends/http.py``), after this."""
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    except ImportError:
        logger.info(
            "opentelemetry-instrumentation-aiohttp-client is not installed: calls to upstream models get "
            "no spans"
        )
        return
    AioHttpClientInstrumentor().instrument()


async def shutdown() -> None:
    """Export the spans still buffered, then stop exporting; for at most ``SHUTDOWN_SECONDS``. The
    exporters retry an unreachable collector for up to their timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by
    default), which must not hold up the stop of a server: its process manager may kill it first. So
    the flush runs in a daemon thread, which the end of the process ends."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is None:
        return
    done = threading.Event()

    def close() -> None:
        provider.shutdown()
        done.set()

    threading.Thread(target=close, name="assistd-tracing-shutdown", daemon=True).start()
    if not await asyncio.to_thread(done.wait, SHUTDOWN_SECONDS):
        logger.warning(
            "the last spans were not exported within %g s of the stop (is the collector "
            "reachable?); they are dropped",
            SHUTDOWN_SECONDS,
        )
