"""/v1/threads/{thread_id}/runs, /v1/threads/runs and run steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from assistd.api.deps import Runs
from assistd.api.responses import PageQuery, json_response, polled_response
from assistd.api.streaming import event_stream
from assistd.errors import InvalidRequest
from assistd.protocol.pagination import Page
from assistd.protocol.runs import RunCreate, RunModify, SubmitToolOutputs, ThreadAndRunCreate
from assistd.runs import file_search, step_view
from assistd.services.runs import RunStart
from assistd.types import Run, RunStep

router = APIRouter(tags=["runs"])

Include = Annotated[list[str] | None, Query(alias="include[]")]


def _includes_content(include: list[str] | None) -> bool:
    """Whether ``include[]`` asks for file_search results' text (its only allowed value)."""
    for value in include or []:
        if value != file_search.INCLUDE_CONTENT:
            raise InvalidRequest(
                f"Invalid value for 'include[]': '{value}'. The only supported value is "
                f"'{file_search.INCLUDE_CONTENT}'.",
                param="include[]",
            )
    return bool(include)


def _run_response(request: Request, run: Run) -> Response:
    return polled_response(request, run)


def _started(request: Request, start: RunStart) -> Response:
    if start.events is not None:
        return event_stream(
            start.events, keepalive_seconds=request.app.state.settings.stream_keepalive_seconds
        )
    return _run_response(request, start.run)


@router.post("/threads/runs", response_model=Run)
async def create_thread_and_run(request: Request, body: ThreadAndRunCreate, service: Runs) -> Response:
    return _started(request, await service.create_thread_and_run(body))


@router.post("/threads/{thread_id}/runs", response_model=Run)
async def create_run(
    request: Request, thread_id: str, body: RunCreate, service: Runs, include: Include = None
) -> Response:
    detailed = _includes_content(include)
    return _started(request, await service.create(thread_id, body, include_search_content=detailed))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def resume_run_stream(
    request: Request,
    thread_id: str,
    run_id: str,
    service: Runs,
    include: Include = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Not OpenAI's: the run's events after event ``after`` (or the Last-Event-ID header), for a client
    whose stream broke; to the end of the run or its wait for tool outputs (PostgreSQL only)."""
    if after is None:
        after = _last_event_id(request.headers.get("last-event-id"))
    events = await service.resume_stream(thread_id, run_id, after, detailed=_includes_content(include))
    settings = request.app.state.settings
    return event_stream(events, keepalive_seconds=settings.stream_keepalive_seconds)


def _last_event_id(header: str | None) -> int:
    if header is None:
        return 0
    if not header.strip().isdigit():
        raise InvalidRequest(
            "Invalid 'Last-Event-ID': expected the id of an event of this run's stream.",
            param="Last-Event-ID",
        )
    return int(header)


@router.get("/threads/{thread_id}/runs", response_model=Page[Run])
async def list_runs(thread_id: str, page: PageQuery, service: Runs) -> Response:
    return json_response(await service.list(thread_id, page))


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def retrieve_run(request: Request, thread_id: str, run_id: str, service: Runs) -> Response:
    return _run_response(request, await service.get(thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def modify_run(
    request: Request, thread_id: str, run_id: str, body: RunModify, service: Runs
) -> Response:
    return _run_response(request, await service.modify(thread_id, run_id, body))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=Run)
async def cancel_run(request: Request, thread_id: str, run_id: str, service: Runs) -> Response:
    return _run_response(request, await service.cancel(thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=Run)
async def submit_tool_outputs(
    request: Request, thread_id: str, run_id: str, body: SubmitToolOutputs, service: Runs
) -> Response:
    return _started(request, await service.submit_tool_outputs(thread_id, run_id, body))


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=Page[RunStep])
async def list_run_steps(
    thread_id: str, run_id: str, page: PageQuery, service: Runs, include: Include = None
) -> Response:
    detailed = _includes_content(include)
    steps = await service.list_steps(thread_id, run_id, page)
    shown = [step_view.wire_step(step, include_content=detailed) for step in steps.data]
    return json_response(steps.model_copy(update={"data": shown}))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=RunStep)
async def retrieve_run_step(
    thread_id: str, run_id: str, step_id: str, service: Runs, include: Include = None
) -> Response:
    detailed = _includes_content(include)
    step = await service.get_step(thread_id, run_id, step_id)
    return json_response(step_view.wire_step(step, include_content=detailed))
