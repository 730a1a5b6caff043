"""Searching the chunks of vector stores: exact cosine similarity over every chunk (numpy), with
OpenAI's attribute filters.

Exact search reads every chunk of the stores asked for; it is simple, always right, and fast enough for
stores of tens of thousands of chunks. An approximate index is the next step for larger ones.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import tables

chunks = tables.vector_store_chunks
store_files = tables.vector_store_files
files = tables.files


@dataclass(frozen=True, slots=True)
class Hit:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]


async def search(
    conn: AsyncConnection,
    project_id: str,
    store_ids: Sequence[str],
    queries: Sequence[Sequence[float]],
    *,
    texts: Sequence[str] = (),
    limit: int,
    score_threshold: float = 0.0,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    """The ``limit`` chunks nearest to any of the query vectors, best first."""
    rows = list(
        await conn.execute(
            select(
                chunks.c.file_id,
                chunks.c.text,
                chunks.c.embedding,
                files.c.filename,
                store_files.c.attributes,
            )
            .select_from(
                chunks.join(
                    store_files,
                    and_(
                        store_files.c.vector_store_id == chunks.c.vector_store_id,
                        store_files.c.id == chunks.c.file_id,
                    ),
                ).join(files, files.c.id == chunks.c.file_id)
            )
            .where(
                chunks.c.project_id == project_id,
                chunks.c.vector_store_id.in_(list(store_ids)),
                store_files.c.status == "completed",
            )
        )
    )
    if filters:
        rows = [row for row in rows if matches(filters, row.attributes or {})]
    if not rows or not queries:
        return []
    matrix = np.frombuffer(b"".join(row.embedding for row in rows), dtype="<f4").reshape(len(rows), -1)
    scores = (matrix @ np.asarray(queries, dtype=np.float32).T).max(axis=1)
    order = np.argsort(-scores, kind="stable")[:limit]
    hits = []
    for position in order:
        score = float(min(max(scores[position], 0.0), 1.0))
        if score < score_threshold:
            break
        row = rows[position]
        hits.append(Hit(row.file_id, row.filename, score, row.text, row.attributes or {}))
    return hits


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda value, options: value in options,
    "nin": lambda value, options: value not in options,
}


def matches(condition: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """OpenAI's attribute filters: ``{type: eq|ne|gt|gte|lt|lte|in|nin, key, value}``, or
    ``{type: and|or, filters: [...]}``. A comparison of a missing key, or of unlike types, is false."""
    kind = condition.get("type")
    if kind in ("and", "or"):
        results = (matches(part, attributes) for part in condition.get("filters", []))
        return all(results) if kind == "and" else any(results)
    compare = _COMPARISONS.get(str(kind))
    key = condition.get("key")
    if compare is None or key not in attributes:
        return False
    try:
        return bool(compare(attributes[key], condition.get("value")))
    except TypeError:
        return False
