"""The file_search tool of runs: the function the model sees, the search it runs, and what goes back.

Models call file_search as a function, ``file_search({"query": ...})``; the run executes it itself
(no ``requires_action``) over the vector stores of the run's assistant and thread, and records the call
in a ``tool_calls`` step as OpenAI did: ``{type: "file_search", file_search: {ranking_options,
results}}``. The model then reads the results, each headed by a marker in OpenAI's own form,
``【N:I†filename】`` (N: which search of the run, I: which result of it), and cites a result by copying
its marker into the answer; ``runs.annotations`` turns those markers into ``file_citation`` annotations.

A step keeps, beside the wire fields, what the wire does not show: the model's query (so a later turn
can show the model its own call again) and each result's text (which clients see only with
``include[]=step_details.tool_calls[*].file_search.results[*].content``); ``runs.step_view`` trims them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.backends.base import BackendError, message_text
from assistd.backends.embeddings import EmbeddingBackend
from assistd.ids import now
from assistd.retrieval.search import search
from assistd.runs.resources import resource_ids
from assistd.store import tables
from assistd.store.database import Database
from assistd.store.repositories import VectorStoreRepository
from assistd.types import Run

NAME = "file_search"
INCLUDE_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
DEFAULT_MAX_RESULTS = 20
# What OpenAI reported for ranker "auto": the ranker it chose.
DEFAULT_RANKER = "default_2024_08_21"
QUERY_KEY = "query"  # the stored step's own key: the model's query, never sent to clients
# How long a search waits for files of its stores still being indexed; after that it searches what is
# there (a run has its own deadline too).
INDEXING_WAIT_SECONDS = 60.0
INDEXING_POLL_SECONDS = 0.2

stores = tables.vector_stores
store_files = tables.vector_store_files

FUNCTION = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Search the documents the user provided. Returns excerpts, each headed by a marker such as "
            "【0:1†notes.md】. Answer from the excerpts, and cite each one you use by copying its marker, "
            "exactly as written, right after the sentence it supports."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for: a question or keywords, in the documents' language.",
                }
            },
            "required": ["query"],
        },
    },
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The run's file_search tool settings, as the step reports them."""

    max_num_results: int
    ranker: str
    score_threshold: float

    def ranking_options(self) -> dict[str, Any]:
        return {"ranker": self.ranker, "score_threshold": self.score_threshold}


def settings(run: Run) -> Settings | None:
    """The settings of the run's file_search tool; None when the run has none."""
    tool = next((tool for tool in run.tools if tool.type == "file_search"), None)
    if tool is None:
        return None
    options = getattr(tool, "file_search", None)
    ranking = options.ranking_options if options is not None else None
    chosen = ranking.ranker if ranking is not None else None
    ranker = chosen if chosen not in (None, "auto") else DEFAULT_RANKER
    return Settings(
        max_num_results=(options.max_num_results if options and options.max_num_results else None)
        or DEFAULT_MAX_RESULTS,
        ranker=ranker,
        score_threshold=ranking.score_threshold if ranking is not None else 0.0,
    )


def query_of(arguments: str, chat: Sequence[dict[str, Any]]) -> str:
    """The query in the model's arguments. A model that sent plain text instead of JSON meant it as the
    query; one that sent none (small models do) gets the user's last message searched."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        parsed = arguments
    if isinstance(parsed, dict):
        parsed = parsed.get("query")
    query = str(parsed).strip() if parsed is not None else ""
    if query:
        return query
    asked = next((message for message in reversed(chat) if message["role"] == "user"), None)
    return message_text(asked.get("content")).strip() if asked is not None else ""


async def vector_store_ids(conn: AsyncConnection, project_id: str, run: Run) -> list[str]:
    """The stores a run searches: its assistant's and its thread's (one each at most, as OpenAI allowed)."""
    return await resource_ids(conn, project_id, run, NAME, "vector_store_ids")


async def _ready_stores(database: Database, project_id: str, run: Run) -> list[str]:
    """The run's stores, once none of their files is still being indexed (a file attached to the
    message just before the run must be searchable, as OpenAI ensured), waiting at most
    ``INDEXING_WAIT_SECONDS``. An expired store fails the run, as OpenAI's did: its owner has to make
    a new one."""
    deadline = time.monotonic() + INDEXING_WAIT_SECONDS
    while True:
        async with database.read() as conn:
            store_ids = await vector_store_ids(conn, project_id, run)
            if not store_ids:
                return []
            expired = await conn.scalar(
                select(stores.c.id).where(
                    stores.c.project_id == project_id,
                    stores.c.id.in_(store_ids),
                    stores.c.expires_at.is_not(None),
                    stores.c.expires_at <= now(),
                )
            )
            indexing = await conn.scalar(
                select(func.count())
                .select_from(store_files)
                .where(
                    store_files.c.project_id == project_id,
                    store_files.c.vector_store_id.in_(store_ids),
                    store_files.c.status == "in_progress",
                )
            )
        if expired is not None:
            raise BackendError(
                f"Vector store {expired} has expired. Create a new vector store with its files and "
                "attach it in place of the old one.",
                "invalid_prompt",
            )
        if not indexing or time.monotonic() >= deadline:
            return store_ids
        await asyncio.sleep(INDEXING_POLL_SECONDS)


async def run_search(
    database: Database,
    embeddings: EmbeddingBackend,
    project_id: str,
    run: Run,
    query: str,
    options: Settings,
) -> list[dict[str, Any]]:
    """The results of one search, as a step stores them (with their text)."""
    store_ids = await _ready_stores(database, project_id, run)
    if not store_ids or not query:
        return []
    # Embedding takes a while: no connection is held meanwhile.
    embedded = await embeddings.embed([query], kind="query")
    async with database.read() as conn:
        hits = await search(
            conn,
            project_id,
            store_ids,
            embedded.vectors,
            texts=[query],
            limit=options.max_num_results,
            score_threshold=options.score_threshold,
        )
    async with database.write() as conn:
        # Searching a store is activity: it moves the expiry of stores that count from the last one.
        repository = VectorStoreRepository(conn, project_id)
        for store_id in store_ids:
            await repository.touch(store_id)
    return [
        {
            "file_id": hit.file_id,
            "file_name": hit.filename,
            "score": hit.score,
            "content": [{"type": "text", "text": hit.text}],
        }
        for hit in hits
    ]


def call_details(
    call_id: str, query: str, options: Settings, results: list[dict[str, Any]]
) -> dict[str, Any]:
    """A file_search call as its step stores it."""
    return {
        "id": call_id,
        "type": NAME,
        NAME: {"ranking_options": options.ranking_options(), "results": results, QUERY_KEY: query},
    }


def marker(search_number: int, result_number: int, file_name: str) -> str:
    return f"【{search_number}:{result_number}†{file_name}】"


def model_output(search_number: int, results: Sequence[dict[str, Any]]) -> str:
    """What the model reads back from a search: each result's text under its marker."""
    if not results:
        return "No results: the documents say nothing about this. Tell the user so; do not make up an answer."
    blocks = []
    for number, result in enumerate(results):
        text = "\n".join(part["text"] for part in result.get("content") or [])
        blocks.append(f"{marker(search_number, number, result['file_name'])}\n{text}")
    return "\n\n".join(blocks)
