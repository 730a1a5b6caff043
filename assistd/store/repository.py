"""A repository: the rows of one table that belong to one project, read and written as API objects."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import InvalidRequest, NotFound
from assistd.ids import is_plausible_id
from assistd.protocol.pagination import Page, PageRequest
from assistd.store.statements import once

T = TypeVar("T", bound=BaseModel)


def _set_clause(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """The SET clause of ``values``: a named parameter (``set_NAME``) for each plain value, so that the
    statement depends only on which columns change; SQL expressions stay as they are."""
    return {
        name: value
        if isinstance(value, ClauseElement)
        else bindparam(f"set_{name}", type_=table.c[name].type)
        for name, value in values.items()
    }


class Repository(Generic[T]):
    """Subclasses name the table, the SDK model its rows become, and the columns that form the object."""

    table: ClassVar[Table]
    model: ClassVar[type[BaseModel]]
    object_name: ClassVar[str]  # the wire ``object`` string, e.g. "thread.message"
    kind: ClassVar[str]  # how errors name it, e.g. "message"
    columns: ClassVar[Sequence[str]]  # the table columns that are fields of the object
    # The column naming the object this one belongs to (a message's thread), for ``get(parent_id=)``.
    parent: ClassVar[str | None] = None

    def __init__(self, conn: AsyncConnection, project_id: str) -> None:
        self.conn = conn
        self.project_id = project_id

    # -- mapping -----------------------------------------------------------------------------------

    def to_object(self, row: Mapping[Any, Any]) -> T:
        data = {name: row[name] for name in self.columns}
        data["object"] = self.object_name
        return self.model.model_validate(data)  # type: ignore[return-value]

    def _select(self, *where: ColumnElement[bool]) -> Select[Any]:
        cols = [self.table.c[name] for name in self.columns]
        return select(*cols).where(self.table.c.project_id == self.project_scope(), *where)

    def project_scope(self) -> ColumnElement[Any]:
        """The project as the parameter ``in_project`` (no column's name: update statements refuse those
        for parameters): its value is this repository's, unless a statement built once
        (``statements.once``) is executed with another."""
        return bindparam("in_project", self.project_id)

    # -- single objects ----------------------------------------------------------------------------

    async def insert(self, values: Mapping[str, Any]) -> T:
        # The values go as parameters, not into the statement: the statement is then the same for every
        # row with these columns, and SQLAlchemy finds it compiled without walking the values.
        await self.conn.execute(insert(self.table), {"project_id": self.project_id, **values})
        return self.to_object(values)

    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> list[T]:
        if rows:
            await self.conn.execute(
                insert(self.table), [{"project_id": self.project_id, **row} for row in rows]
            )
        return [self.to_object(row) for row in rows]

    async def insert_missing(self, rows: Sequence[Mapping[str, Any]], *, unique: Sequence[str]) -> list[str]:
        """Inserts the rows that collide with no existing row on the ``unique`` columns, atomically
        (two requests adding the same row at once insert it once); the ids of those inserted."""
        keys = list(unique)
        statement = (
            postgresql.insert(self.table).on_conflict_do_nothing(index_elements=keys)
            if self.conn.dialect.name == "postgresql"
            else sqlite.insert(self.table).on_conflict_do_nothing(index_elements=keys)
        ).returning(self.table.c.id)
        inserted: list[str] = []
        for row in rows:
            found = await self.conn.scalar(statement, {"project_id": self.project_id, **row})
            if found is not None:
                inserted.append(found)
        return inserted

    async def get(
        self, object_id: str, *where: ColumnElement[bool], parent_id: str | None = None
    ) -> T | None:
        """The object, if it is there (and belongs to ``parent_id`` when given: a run to that thread)."""
        if where:
            statement = self._select(self.table.c.id == object_id, *self._in_parent(parent_id), *where)
        else:
            # The statements of the polled paths (a run by id in its thread): built once.
            statement = once(
                (type(self), "get", parent_id is None),
                lambda: self._select(self.table.c.id == bindparam("by_id"), *self._in_parent(parent_id)),
            )
        parameters = {"by_id": object_id, "in_project": self.project_id, "in_parent": parent_id}
        row = (await self.conn.execute(statement, parameters)).mappings().first()
        return None if row is None else self.to_object(row)

    def _in_parent(self, parent_id: str | None) -> list[ColumnElement[bool]]:
        """The condition that the object belongs to ``parent_id`` (the parameter ``in_parent``)."""
        if parent_id is None:
            return []
        if self.parent is None:
            raise TypeError(f"{type(self).__name__} has no parent column")
        return [self.table.c[self.parent] == bindparam("in_parent")]

    async def require(self, object_id: str, *where: ColumnElement[bool], parent_id: str | None = None) -> T:
        """The object, or ``NotFound`` naming it by the repository's ``kind``."""
        found = await self.get(object_id, *where, parent_id=parent_id)
        if found is None:
            raise NotFound(self.kind, object_id)
        return found

    async def update(
        self,
        object_id: str,
        values: Mapping[str, Any],
        *where: ColumnElement[bool],
        shape: Hashable = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> T | None:
        """Change the given columns (to values, or to SQL expressions); returns the updated object, or
        None when it is not there.

        The statement is built once for each set of columns. A caller whose ``where`` or expressions
        take their values from named parameters (given in ``parameters``) names their ``shape`` to
        have its statement built once too; otherwise such a statement is built on every call."""

        def build() -> Any:
            return (
                update(self.table)
                .where(self.table.c.id == bindparam("by_id"), self.table.c.project_id == self.project_scope())
                .where(*where)
                .values(_set_clause(self.table, values))
                .returning(*[self.table.c[name] for name in self.columns])
            )

        expressions = any(isinstance(value, ClauseElement) for value in values.values())
        if shape is None and (where or expressions):
            statement = build()
        else:
            statement = once((type(self), "update", shape, tuple(values)), build)
        bound = {
            f"set_{name}": value for name, value in values.items() if not isinstance(value, ClauseElement)
        }
        bound.update(by_id=object_id, in_project=self.project_id, **(parameters or {}))
        row = (await self.conn.execute(statement, bound)).mappings().first()
        return None if row is None else self.to_object(row)

    async def delete(self, object_id: str, *where: ColumnElement[bool], parent_id: str | None = None) -> bool:
        statement = delete(self.table).where(
            self.table.c.id == object_id,
            self.table.c.project_id == self.project_id,
            *self._in_parent(parent_id),
            *where,
        )
        result = await self.conn.execute(statement, {"in_parent": parent_id})
        return bool(result.rowcount)

    async def delete_where(self, *where: ColumnElement[bool]) -> int:
        statement = delete(self.table).where(self.table.c.project_id == self.project_id, *where)
        return int((await self.conn.execute(statement)).rowcount)

    # -- lists -------------------------------------------------------------------------------------

    async def page(self, request: PageRequest, *where: ColumnElement[bool]) -> Page[T]:
        """One page in (created_at, seq) order: a total order even when many objects share a second."""
        key = tuple_(self.table.c.created_at, self.table.c.seq)
        ascending = request.order == "asc"
        conditions = list(where)
        if request.after is not None:
            cursor = await self._cursor(request.after, "after", where)
            conditions.append(key > cursor if ascending else key < cursor)
        if request.before is not None:
            cursor = await self._cursor(request.before, "before", where)
            conditions.append(key < cursor if ascending else key > cursor)

        # With only `before`, the page is the `limit` objects just before the cursor: read them walking
        # away from it, then turn them back into the requested order.
        reverse = request.before is not None and request.after is None
        walk_ascending = ascending != reverse
        order = (
            (self.table.c.created_at.asc(), self.table.c.seq.asc())
            if walk_ascending
            else (self.table.c.created_at.desc(), self.table.c.seq.desc())
        )
        statement = self._select(*conditions).order_by(*order).limit(request.limit + 1)
        rows = list((await self.conn.execute(statement)).mappings())
        has_more = len(rows) > request.limit
        rows = rows[: request.limit]
        if reverse:
            rows.reverse()
        data: list[T] = [self.to_object(row) for row in rows]
        return Page[T](
            object="list",
            data=data,
            first_id=data[0].id if data else None,  # type: ignore[attr-defined]
            last_id=data[-1].id if data else None,  # type: ignore[attr-defined]
            has_more=has_more,
        )

    async def _cursor(self, object_id: str, param: str, where: Sequence[ColumnElement[bool]]) -> Any:
        if not is_plausible_id(object_id):
            raise InvalidRequest(f"Invalid '{param}': '{object_id}' is not an object id.", param=param)
        statement = select(self.table.c.created_at, self.table.c.seq).where(
            self.table.c.id == object_id, self.table.c.project_id == self.project_id, *where
        )
        row = (await self.conn.execute(statement)).first()
        if row is None:
            raise InvalidRequest(
                f"Invalid '{param}': no {self.kind} with id '{object_id}' in this list.", param=param
            )
        return tuple_(row.created_at, row.seq)
