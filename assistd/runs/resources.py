"""The tool resources a run uses: its assistant's, then its thread's (OpenAI merged the two)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import tables
from assistd.types import Run


async def resource_ids(conn: AsyncConnection, project_id: str, run: Run, tool: str, key: str) -> list[str]:
    """The ids in ``tool_resources.<tool>.<key>`` of the run's assistant and thread, in that order,
    each once."""
    found: list[str] = []
    for table, row_id in ((tables.assistants, run.assistant_id), (tables.threads, run.thread_id)):
        resources = await conn.scalar(
            select(table.c.tool_resources).where(table.c.project_id == project_id, table.c.id == row_id)
        )
        ids = ((resources or {}).get(tool) or {}).get(key) or []
        found += [item for item in ids if item not in found]
    return found
