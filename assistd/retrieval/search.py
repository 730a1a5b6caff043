"""Searching the chunks of vector stores: vector similarity and full text, fused by reciprocal rank
fusion, with OpenAI's attribute filters.

A search ranks the chunks of the stores asked for twice:

* **by vector**: cosine similarity (embeddings are unit vectors) to the nearest of the query vectors,
  exact, over every chunk: in numpy, or in the database where PostgreSQL has pgvector (see below);
* **by full text**, when query texts are given: the chunks that contain a rare query term (one found in
  at most :data:`RARE_SHARE` of the chunks searched), each scoring the inverse document frequency
  (BM25's, over the chunks searched) of each rare term it contains, ties going to the nearer vector.

and fuses the two lists by reciprocal rank fusion (:data:`RRF_K`). Full text is what finds a product
code, a surname or a rare word that embeddings blur with their neighbours ("XK-4471" and "XK-4417" embed
alike); vectors are what find a paraphrase. RRF needs no calibration between the two scores, which are
not comparable, only their orders.

``Hit.score`` is the chunk's cosine similarity to the query, clamped to 0..1, whichever list found it:
the one relevance that means the same for every chunk, so that ``score_threshold`` filters on something a
client can reason about. The order is RRF's, so scores need not decrease down the list: a chunk that
contains the exact term asked for can come first with a lower score than the one after it. Without
query texts the search is by vector alone and the order is the score's.

Terms: the query texts are cut into words (letters and digits, joined by ``-_.:/'@#+``, so ``XK-4471``
and ``e-mail`` stay whole), and runs of CJK characters (:data:`CJK`) into overlapping n-grams, since
those scripts put no spaces between words (and Korean glues particles to them). A word matches whole
words, case-insensitively, the same on both databases; how CJK is matched differs by index (migration
0005): on SQLite an FTS5 trigram index of the chunks that contain CJK, so n-grams are trigrams and a run
of 1 or 2 characters cannot be searched; on PostgreSQL every CJK character is a lexeme, so n-grams are
bigrams, each a phrase of two characters.

Reading, in memory (SQLite, and PostgreSQL without pgvector): the vectors of a store (not its texts) are
kept in memory per process (:class:`_Cache`, at most :data:`CACHE_BYTES`) with the store's
``chunk_version``, which triggers move in the same transaction as any change to its chunks, whichever
process makes it; a search reads that counter and reads the vectors again only when it has moved. Texts
are read for the hits only.

Reading, on pgvector (the column ``embedding_vec`` of migration 0006, looked for once per database and
process): the database ranks the vectors, an exact scan of the stores' chunks ordered by cosine distance
(``<=>``), and returns the :data:`CANDIDATES` nearest; the chunks full text finds are read with their
similarity. No process holds a store's vectors, which is what many processes that share one database
need; each keeps only the stores' chunk counts, by ``chunk_version`` (full text's share needs them). The
two readings give the same candidates and scores, up to float rounding: only :meth:`_Chunks.nearest` and
:meth:`_Chunks.include` differ; fusion, filters and hits are one code.
"""

from __future__ import annotations

import math
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    any_,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable, Select
from sqlalchemy.types import UserDefinedType

from assistd.store import tables

chunks = tables.vector_store_chunks
store_files = tables.vector_store_files
files = tables.files
stores = tables.vector_stores

# Reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): a chunk scores the sum over the lists of
# 1 / (RRF_K + its rank). The constant flattens the top ranks, so that a chunk ranked well by both lists
# beats one ranked first by one list only; 60 is the paper's value, which held across collections
# without tuning, and what hybrid search engines use by default.
RRF_K: Final = 60
# Chunks taken from each list before fusing: more than the largest ``limit`` (50), so that every chunk
# that could be returned is in both lists if it ranks at all, and fixed, so that a smaller ``limit``
# returns a prefix of a larger one's results. Past rank 100 a list adds less than 1/160 to a chunk.
CANDIDATES: Final = 100
# Full text counts only the query terms found in at most this share of the chunks searched (or in one
# chunk): identifiers, names, words few chunks use, which is where it beats embeddings. A chunk that
# shares only common words with the query ("with", "the", "day") is left to the vector ranking, which
# weighs such words already: in RRF a place in the full-text list is a vote, whatever the score behind
# it, and a vote for every chunk that contains "with" would drown the vector order.
RARE_SHARE: Final = 0.05
# ... and at most this many chunks, whatever the store's size: a term is read from the index up to
# here, so this bounds what a query costs (in a store of 100,000 chunks it is a share of 2%).
MAX_TERM_CHUNKS: Final = 2_000
MAX_TERMS: Final = 32  # distinct query terms searched; a long query's first ones
# The vectors kept in memory per process: ~170,000 chunks of 384 dimensions. A larger store is read for
# each search.
CACHE_BYTES: Final = 256 * 1024 * 1024
# Stores whose chunk count a process keeps on pgvector (a few dozen bytes each).
COUNTED_STORES: Final = 65_536

# Han (with its extensions and compatibility forms, and 々〆〇), hiragana, katakana (also half-width) and
# hangul (syllables and jamo). Must be the class of migration 0005, which indexes these characters apart
# from words.
CJK: Final = (
    "\u1100-\u11ff\u3005-\u3007\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_WORD = re.compile(r"[^\W_]+(?:[-_.:/'\u2019@#+][^\W_]+)*")
_CJK_RUN = re.compile(f"([{CJK}]+)")
# The full-text indexes of migration 0005, which hold each chunk's seq, store and terms. SQLite: FTS5
# tables of words and of CJK trigrams. PostgreSQL: a table of tsvectors.
_FTS_WORDS = "vector_store_chunks_fts"
_FTS_CJK = "vector_store_chunks_cjk"
_pg_fts = table("vector_store_chunks_fts", column("seq"), column("vector_store_id"), column("terms"))


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
    """The best ``limit`` chunks for the query vectors (and query ``texts``, if any), best first, each
    with a score of at least ``score_threshold`` and attributes that match ``filters`` (see the module).
    Nothing is found without query vectors."""
    if not queries or not store_ids:
        return []
    store_ids = list(dict.fromkeys(store_ids))
    vectors = np.asarray(queries, dtype=np.float32)
    found: dict[tuple[str, str], _File] | None = None
    allowed: set[tuple[str, str]] | None = None
    if filters:
        found = await _completed_files(conn, project_id, store_ids)
        allowed = {key for key, file in found.items() if matches(filters, file.attributes)}
    rows: _Chunks
    if await _uses_pgvector(conn):
        rows = await _Nearest.read(conn, project_id, store_ids, vectors, allowed)
    else:
        rows = _Rows(await _snapshots(conn, project_id, store_ids), vectors)
    if not rows.count:
        return []

    terms = query_terms(texts, dialect=conn.dialect.name)
    most = _most_chunks(rows.count)
    matched = await _term_matches(conn, store_ids, terms, most) if terms else []
    await rows.include(conn, [seq for seqs in matched if len(seqs) <= most for seq in seqs])
    if found is not None and allowed is not None:
        rows.keep(found, allowed)
    lists = [rows.nearest()]
    if terms:
        relevance = _term_relevance(rows, matched, most)
        lists.append(_top_by_text(relevance, rows.similarity, rows.allowed))

    similarity = rows.similarity
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, row in enumerate(ranked.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
    if not filters:
        # Chunks exist only for completed files (the indexer writes them as it completes the file, and
        # removing a file deletes them): without filters, only the candidates' files are read.
        rows.files = await _completed_files(conn, project_id, store_ids, [rows.file_of(row) for row in fused])
    order = sorted(fused, key=lambda row: (-fused[row], -similarity[row], row))
    chosen: list[tuple[int, float]] = []
    for row in order:
        score = min(max(float(similarity[row]), 0.0), 1.0)
        if score >= score_threshold and rows.file_of(row) in rows.files:
            chosen.append((row, score))
            if len(chosen) == limit:
                break
    return await _hits(conn, project_id, rows, chosen)


# -- the vectors of stores, cached ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Snapshot:
    """A store's chunks as search keeps them: ``seqs[i]`` is row i's chunk, of file ``files[codes[i]]``,
    with embedding ``matrix[i]``; ``by_seq`` orders the rows by seq, ``sorted_seqs`` is ``seqs`` so ordered
    (for looking chunks up)."""

    store_id: str
    version: int
    seqs: npt.NDArray[np.int64]
    files: tuple[str, ...]
    codes: npt.NDArray[np.int32]
    matrix: npt.NDArray[np.float32]
    by_seq: npt.NDArray[np.intp]
    sorted_seqs: npt.NDArray[np.int64]

    @property
    def nbytes(self) -> int:
        arrays = (self.seqs, self.codes, self.matrix, self.by_seq, self.sorted_seqs)
        return sum(array.nbytes for array in arrays)

    def rows_of(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """The rows of the chunks ``seqs`` that are in the snapshot (a chunk written after it is not)."""
        places = np.searchsorted(self.sorted_seqs, seqs)
        inside = places < len(self.sorted_seqs)
        places, seqs = places[inside], seqs[inside]
        hit = self.sorted_seqs[places] == seqs
        found: npt.NDArray[np.intp] = self.by_seq[places[hit]]
        return found


# A snapshot's key: the database (its URL, password hidden), the project and the store.
_Key = tuple[str, str, str]


class _Cache:
    """Snapshots by database, project and store, least recently used dropped first, at most
    ``capacity`` bytes.

    Only for one event loop (no locks: the loop runs one search step at a time). Two searches that miss
    at once both read the store; the second snapshot replaces the first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._items: OrderedDict[_Key, _Snapshot] = OrderedDict()

    def get(self, key: _Key, version: int) -> _Snapshot | None:
        found = self._items.get(key)
        if found is None or found.version != version:
            return None
        self._items.move_to_end(key)
        return found

    def put(self, key: _Key, snapshot: _Snapshot) -> None:
        self.drop(key)
        if snapshot.nbytes > self.capacity:
            return
        self._items[key] = snapshot
        self.used += snapshot.nbytes
        while self.used > self.capacity:
            _, oldest = self._items.popitem(last=False)
            self.used -= oldest.nbytes

    def drop(self, key: _Key) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old.nbytes


_cache = _Cache(CACHE_BYTES)


def _key(conn: AsyncConnection, project_id: str, store_id: str) -> _Key:
    return conn.engine.url.render_as_string(), project_id, store_id


async def _versions(conn: AsyncConnection, project_id: str, store_ids: list[str]) -> dict[str, int]:
    """The chunk versions of the stores that exist in the project."""
    result = await conn.execute(
        select(stores.c.id, stores.c.chunk_version).where(
            stores.c.project_id == project_id, stores.c.id.in_(store_ids)
        )
    )
    return {store_id: version for store_id, version in result.tuples()}


async def _snapshots(conn: AsyncConnection, project_id: str, store_ids: list[str]) -> list[_Snapshot]:
    """The stores' snapshots, read again for the stores whose chunk version has moved.

    The version is read before the chunks, so a snapshot is never older than the version it is kept
    under: a change committed in between makes the version move again, and the next search reads again.
    """
    versions = await _versions(conn, project_id, store_ids)
    found: list[_Snapshot] = []
    for store_id in store_ids:
        key = _key(conn, project_id, store_id)
        if store_id not in versions:
            _cache.drop(key)
            continue
        snapshot = _cache.get(key, versions[store_id])
        if snapshot is None:
            snapshot = await _read_snapshot(conn, project_id, store_id, versions[store_id])
            _cache.put(key, snapshot)
        if len(snapshot.seqs):
            found.append(snapshot)
    return found


async def _read_snapshot(conn: AsyncConnection, project_id: str, store_id: str, version: int) -> _Snapshot:
    result = await conn.execute(
        select(chunks.c.seq, chunks.c.file_id, chunks.c.embedding).where(
            chunks.c.project_id == project_id, chunks.c.vector_store_id == store_id
        )
    )
    seqs: list[int] = []
    codes: list[int] = []
    blobs: list[bytes] = []
    known: dict[str, int] = {}
    for seq, file_id, embedding in result.tuples():
        seqs.append(seq)
        codes.append(known.setdefault(file_id, len(known)))
        blobs.append(embedding)
    vectors = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False)
    seq_array = np.asarray(seqs, dtype=np.int64)
    by_seq = np.argsort(seq_array, kind="stable")
    return _Snapshot(
        store_id=store_id,
        version=version,
        seqs=seq_array,
        files=tuple(known),
        codes=np.asarray(codes, dtype=np.int32),
        matrix=vectors.reshape(len(seqs), -1) if seqs else vectors.reshape(0, 0),
        by_seq=by_seq,
        sorted_seqs=seq_array[by_seq],
    )


# -- the vectors of stores, in the database (pgvector) ----------------------------------------------------


class _Vector(UserDefinedType[str]):
    """pgvector's ``vector``, of any dimension."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "vector"


# Migration 0006's column, which tables.py does not declare (not every database has it).
_embedding_vec = literal_column("vector_store_chunks.embedding_vec", _Vector())
# Whether a database has it, by its URL (password hidden). Looked up once per process: the migrations
# that add or drop it run before a server serves.
_pgvector: dict[str, bool] = {}


async def _uses_pgvector(conn: AsyncConnection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    url = conn.engine.url.render_as_string()
    found = _pgvector.get(url)
    if found is None:
        column_there = await conn.scalar(
            text(
                "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('vector_store_chunks')"
                " AND attname = 'embedding_vec' AND NOT attisdropped)"
            )
        )
        found = _pgvector[url] = bool(column_there)
    return found


class _Counts:
    """The stores' chunk counts, by database, project and store, each with the chunk version it was
    counted at; at most COUNTED_STORES, least recently used dropped first."""

    def __init__(self) -> None:
        self._items: OrderedDict[_Key, tuple[int, int]] = OrderedDict()

    async def total(self, conn: AsyncConnection, project_id: str, store_ids: list[str]) -> int:
        """The chunks of the stores, counted again for the stores whose chunk version has moved (read
        before the count, as for a snapshot)."""
        versions = await _versions(conn, project_id, store_ids)
        total = 0
        stale: list[str] = []
        for store_id, version in versions.items():
            key = _key(conn, project_id, store_id)
            known = self._items.get(key)
            if known is not None and known[0] == version:
                self._items.move_to_end(key)
                total += known[1]
            else:
                stale.append(store_id)
        if stale:
            result = await conn.execute(
                select(chunks.c.vector_store_id, func.count())
                .where(chunks.c.project_id == project_id, chunks.c.vector_store_id.in_(stale))
                .group_by(chunks.c.vector_store_id)
            )
            counted = {store_id: count for store_id, count in result.tuples()}
            for store_id in stale:
                self._items[_key(conn, project_id, store_id)] = (versions[store_id], counted.get(store_id, 0))
                total += counted.get(store_id, 0)
            while len(self._items) > COUNTED_STORES:
                self._items.popitem(last=False)
        return total


_counts = _Counts()


class _Nearest:
    """The chunks of one search on pgvector: the CANDIDATES nearest by vector, as the database ranked
    them (rows 0 .. ``ranked`` - 1), then those :meth:`include` asks for; ``count`` is every chunk of the
    stores, as for :class:`_Rows`."""

    def __init__(self, project_id: str, store_ids: list[str], vectors: npt.NDArray[np.float32], count: int):
        self.project_id = project_id
        self.store_ids = store_ids
        self.dimensions = vectors.shape[1]
        self.count = count
        self.allowed: npt.NDArray[np.bool_] | None = None
        self.files: dict[tuple[str, str], _File] = {}
        self.similarity = np.zeros(0, dtype=np.float32)
        self.ranked = 0
        self._seqs: list[int] = []
        self._keys: list[tuple[str, str]] = []
        self._rows: dict[int, int] = {}
        # The query vectors as text, each cast to a vector once per statement (a scalar subquery is an
        # InitPlan; a cast of a parameter in a generic plan would be done again for every row). Python's
        # repr of a float32 widened to a float is exact, and pgvector reads it back to the same float32.
        given = [
            select(cast(literal("[" + ",".join(map(repr, vector.tolist())) + "]", String), _Vector()))
            for vector in vectors
        ]
        distances = [_embedding_vec.op("<=>", return_type=Float)(query.scalar_subquery()) for query in given]
        # To the nearest query vector; NULL for a vector of another size, which pgvector refuses to
        # compare (stores indexed with another embedding model), and for a chunk without one.
        self.distance = case(
            (
                func.vector_dims(_embedding_vec) == self.dimensions,
                distances[0] if len(distances) == 1 else func.least(*distances, type_=Float),
            ),
            else_=None,
        )

    @classmethod
    async def read(
        cls,
        conn: AsyncConnection,
        project_id: str,
        store_ids: list[str],
        vectors: npt.NDArray[np.float32],
        allowed: set[tuple[str, str]] | None,
    ) -> _Nearest:
        """The CANDIDATES chunks of the stores nearest to the query vectors, of the ``allowed`` files
        only (None: of any), ranked exactly (migration 0006 says why there is no vector index)."""
        nearest = cls(project_id, store_ids, vectors, await _counts.total(conn, project_id, store_ids))
        if not nearest.count or allowed == set():
            return nearest
        distance = nearest.distance.label("distance")
        # The size is checked in the distance, not here: the planner estimates the rows left by a
        # condition on a function's result with a fixed guess (0.5%), which makes it scan every store's
        # chunks rather than use the index on the store.
        where = [
            chunks.c.project_id == project_id,
            chunks.c.vector_store_id.in_(store_ids),
            _embedding_vec.is_not(None),
        ]
        if allowed is not None:
            where.append(_of_files(allowed))
        result = await conn.execute(
            select(chunks.c.seq, chunks.c.vector_store_id, chunks.c.file_id, distance)
            .where(*where)
            .order_by(distance.asc().nulls_last(), chunks.c.seq)
            .limit(CANDIDATES)
        )
        nearest._add(row for row in result.tuples() if row[3] is not None)
        nearest.ranked = len(nearest._seqs)
        return nearest

    def nearest(self) -> npt.NDArray[np.intp]:
        return np.arange(self.ranked, dtype=np.intp)

    async def include(self, conn: AsyncConnection, seqs: list[int]) -> None:
        """Makes rows of the chunks ``seqs`` of the stores, with their similarity (one statement)."""
        wanted = sorted({seq for seq in seqs if seq not in self._rows})
        if not wanted:
            return
        result = await conn.execute(
            select(chunks.c.seq, chunks.c.vector_store_id, chunks.c.file_id, self.distance).where(
                chunks.c.project_id == self.project_id,
                chunks.c.vector_store_id.in_(self.store_ids),
                chunks.c.seq == any_(cast(literal(wanted, ARRAY(BigInteger)), ARRAY(BigInteger))),
            )
        )
        self._add(result.tuples())

    def _add(self, found: Iterable[tuple[int, str, str, float | None]]) -> None:
        added: list[float] = []
        for seq, store_id, file_id, distance in found:
            self._rows[seq] = len(self._seqs)
            self._seqs.append(seq)
            self._keys.append((store_id, file_id))
            # No vector, or a zero one (a NaN distance): as unrelated as a vector can be to the query.
            added.append(0.0 if distance is None or math.isnan(distance) else 1.0 - distance)
        self.similarity = np.concatenate([self.similarity, np.asarray(added, dtype=np.float32)])

    def keep(self, found: dict[tuple[str, str], _File], allowed: set[tuple[str, str]]) -> None:
        self.files = found
        self.allowed = np.fromiter(
            (key in allowed for key in self._keys), dtype=np.bool_, count=len(self._keys)
        )

    def file_of(self, row: int) -> tuple[str, str]:
        return self._keys[row]

    def chunk(self, row: int) -> tuple[int, str, str]:
        store_id, file_id = self._keys[row]
        return self._seqs[row], store_id, file_id

    def rows_of(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        found = [self._rows[seq] for seq in seqs.tolist() if seq in self._rows]
        return np.asarray(found, dtype=np.intp)


def _of_files(allowed: set[tuple[str, str]]) -> ColumnElement[bool]:
    """Chunks of the files ``allowed``, by (store, file): per store, an array of file ids (which the index
    on store and file serves, and which is one parameter however many files)."""
    by_store: dict[str, list[str]] = {}
    for store_id, file_id in sorted(allowed):
        by_store.setdefault(store_id, []).append(file_id)
    return or_(
        *(
            and_(
                chunks.c.vector_store_id == store_id,
                chunks.c.file_id == any_(cast(literal(file_ids, ARRAY(String)), ARRAY(String))),
            )
            for store_id, file_ids in by_store.items()
        )
    )


# -- one search's rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _File:
    filename: str
    attributes: dict[str, Any]


async def _completed_files(
    conn: AsyncConnection, project_id: str, store_ids: list[str], only: list[tuple[str, str]] | None = None
) -> dict[tuple[str, str], _File]:
    """The searchable files of the stores (completed, and still a file), or of those ``only``, by
    (store, file)."""
    where = [
        store_files.c.project_id == project_id,
        store_files.c.vector_store_id.in_(store_ids),
        store_files.c.status == "completed",
    ]
    if only is not None:
        if not only:
            return {}
        where.append(store_files.c.id.in_({file_id for _, file_id in only}))
    result = await conn.execute(
        select(store_files.c.vector_store_id, store_files.c.id, files.c.filename, store_files.c.attributes)
        .select_from(store_files.join(files, files.c.id == store_files.c.id))
        .where(*where)
    )
    return {
        (store, file_id): _File(filename, attributes or {}) for store, file_id, filename, attributes in result
    }


class _Chunks(Protocol):
    """The chunks one search ranks, as rows numbered from 0: every chunk of the stores (:class:`_Rows`,
    in memory) or the ones that can rank (:class:`_Nearest`, on pgvector). ``count`` is the chunks of
    the stores; ``similarity`` each row's cosine similarity to the nearest query vector; ``allowed`` marks
    the rows that may be found (None: all of them); ``files`` are the searchable files read so far, by
    (store, file)."""

    count: int
    similarity: npt.NDArray[np.float32]
    allowed: npt.NDArray[np.bool_] | None
    files: dict[tuple[str, str], _File]

    def nearest(self) -> npt.NDArray[np.intp]:
        """The allowed rows of the CANDIDATES highest similarities, best first."""
        ...

    async def include(self, conn: AsyncConnection, seqs: list[int]) -> None:
        """Makes sure that the chunks ``seqs`` of the stores are rows."""
        ...

    def keep(self, found: dict[tuple[str, str], _File], allowed: set[tuple[str, str]]) -> None:
        """Allows only the chunks of the files ``allowed`` (of those ``found``)."""
        ...

    def file_of(self, row: int) -> tuple[str, str]: ...

    def chunk(self, row: int) -> tuple[int, str, str]:
        """The row's seq, store and file."""
        ...

    def rows_of(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """The rows of the chunks ``seqs``, in no particular order."""
        ...


class _Rows:
    """Every chunk of one search, in memory, numbered across the stores' snapshots: store k's row i is
    row ``offsets[k] + i``."""

    def __init__(self, snapshots: list[_Snapshot], queries: npt.NDArray[np.float32]) -> None:
        self.snapshots = snapshots
        sizes = [len(snapshot.seqs) for snapshot in snapshots]
        self.offsets = np.cumsum([0, *sizes])
        self.count = int(self.offsets[-1])
        self.allowed: npt.NDArray[np.bool_] | None = None
        self.files: dict[tuple[str, str], _File] = {}
        parts = [(snapshot.matrix @ queries.T).max(axis=1) for snapshot in snapshots]
        self.similarity = (
            np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
        )

    def nearest(self) -> npt.NDArray[np.intp]:
        return _top(self.similarity, self.allowed)

    async def include(self, conn: AsyncConnection, seqs: list[int]) -> None:
        """Nothing to do: every chunk is a row."""

    def keep(self, found: dict[tuple[str, str], _File], allowed: set[tuple[str, str]]) -> None:
        self.files = found
        masks = []
        for snapshot in self.snapshots:
            codes = [
                code for code, file_id in enumerate(snapshot.files) if (snapshot.store_id, file_id) in allowed
            ]
            masks.append(np.isin(snapshot.codes, np.asarray(codes, dtype=np.int32)))
        self.allowed = np.concatenate(masks)

    def file_of(self, row: int) -> tuple[str, str]:
        snapshot, index = self.locate(row)
        return snapshot.store_id, snapshot.files[snapshot.codes[index]]

    def chunk(self, row: int) -> tuple[int, str, str]:
        snapshot, index = self.locate(row)
        return int(snapshot.seqs[index]), snapshot.store_id, snapshot.files[snapshot.codes[index]]

    def rows_of(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        parts = [
            snapshot.rows_of(seqs) + int(offset)
            for snapshot, offset in zip(self.snapshots, self.offsets[:-1], strict=True)
        ]
        found: npt.NDArray[np.intp] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
        return found

    def locate(self, row: int) -> tuple[_Snapshot, int]:
        index = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return self.snapshots[index], row - int(self.offsets[index])


def _top(scores: npt.NDArray[np.float32], allowed: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.intp]:
    """The allowed rows of the CANDIDATES highest scores, best first (ties: the lower row first)."""
    eligible = np.arange(len(scores)) if allowed is None else np.flatnonzero(allowed)
    if len(eligible) > CANDIDATES:
        eligible = eligible[np.argpartition(-scores[eligible], CANDIDATES - 1)[:CANDIDATES]]
        eligible.sort()
    return eligible[np.argsort(-scores[eligible], kind="stable")]


def _top_by_text(
    relevance: npt.NDArray[np.float64],
    similarity: npt.NDArray[np.float32],
    allowed: npt.NDArray[np.bool_] | None,
) -> npt.NDArray[np.intp]:
    """The allowed rows that contain a term, by relevance then similarity: the first CANDIDATES."""
    rows = np.flatnonzero(relevance > 0 if allowed is None else allowed & (relevance > 0))
    order = np.lexsort((-similarity[rows], -relevance[rows]))
    return rows[order[:CANDIDATES]]


async def _hits(
    conn: AsyncConnection, project_id: str, rows: _Chunks, chosen: list[tuple[int, float]]
) -> list[Hit]:
    """The chosen rows as hits, in order, with their texts. A chunk deleted meanwhile is left out, also
    when SQLite has given its seq to a chunk written since (it reuses the highest row ids)."""
    if not chosen:
        return []
    located = [(rows.chunk(row), score) for row, score in chosen]
    result = await conn.execute(
        select(chunks.c.seq, chunks.c.vector_store_id, chunks.c.file_id, chunks.c.text).where(
            chunks.c.project_id == project_id, chunks.c.seq.in_([seq for (seq, _, _), _ in located])
        )
    )
    texts = {(seq, store_id, file_id): body for seq, store_id, file_id, body in result.tuples()}
    hits = []
    for (seq, store_id, file_id), score in located:
        body = texts.get((seq, store_id, file_id))
        if body is not None:
            file = rows.files[store_id, file_id]
            hits.append(Hit(file_id, file.filename, score, body, file.attributes))
    return hits


# -- full text --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """A query term as the index of its kind takes it: a word, or an n-gram of CJK characters (spaced
    on PostgreSQL, where they are indexed one by one)."""

    text: str
    cjk: bool


def query_terms(texts: Iterable[str], *, dialect: str) -> list[Term]:
    """The distinct terms of the query texts (see the module), at most MAX_TERMS, for ``dialect``'s
    index: CJK runs as trigrams on SQLite, bigrams on PostgreSQL (a shorter run as it is)."""
    gram = 3 if dialect == "sqlite" else 2
    terms: dict[str, Term] = {}
    for query in texts:
        for word in _WORD.findall(query):
            for position, piece in enumerate(_CJK_RUN.split(word)):
                cjk = position % 2 == 1  # split() puts the runs it splits on at odd positions
                if not cjk:
                    pieces = [piece.strip("-_.:/'\u2019@#+")]
                elif len(piece) <= gram:
                    pieces = [piece]
                else:
                    pieces = [piece[start : start + gram] for start in range(len(piece) - gram + 1)]
                for term in pieces:
                    if not term or (cjk and dialect == "sqlite" and len(term) < gram):
                        continue  # trigrams cannot match 1 or 2 characters
                    spaced = " ".join(term) if cjk and dialect != "sqlite" else term
                    terms.setdefault(term.casefold(), Term(spaced, cjk))
                    if len(terms) == MAX_TERMS:
                        return list(terms.values())
    return list(terms.values())


# SQLite: the chunks of the stores that contain a term, from the FTS5 table of its kind, which indexes
# each chunk's store too (a query of the form `vector_store_id : ("vs_1" OR "vs_2") AND text : "term"`).
_SQLITE_MATCH = (
    "SELECT * FROM (SELECT {number} AS term, rowid FROM {table}"
    " WHERE {table} MATCH :term_{number} LIMIT :limit)"
)


def _most_chunks(count: int) -> int:
    """The most chunks of ``count`` a term counted by full text may be found in (see RARE_SHARE)."""
    return max(1, min(int(RARE_SHARE * count), MAX_TERM_CHUNKS))


async def _term_matches(
    conn: AsyncConnection, store_ids: list[str], terms: list[Term], most: int
) -> list[list[int]]:
    """For each term, the seqs of the chunks of the stores that contain it: at most ``most`` + 1, which
    is enough to tell that there are too many. One statement for all terms.

    The project is not checked here: the seqs are looked up in the stores' snapshots, which hold the
    project's chunks only."""
    statement: Executable
    if conn.dialect.name == "sqlite":
        stores = " OR ".join(_fts5_string(store_id) for store_id in store_ids)
        parts, queries = [], {}
        for number, term in enumerate(terms):
            parts.append(_SQLITE_MATCH.format(number=number, table=_FTS_CJK if term.cjk else _FTS_WORDS))
            # A quoted FTS5 string: a phrase of the tokens the table's tokenizer makes of the term.
            queries[f"term_{number}"] = f"vector_store_id : ({stores}) AND text : {_fts5_string(term.text)}"
        statement = text(" UNION ALL ".join(parts)).bindparams(limit=most + 1, **queries)
    else:
        selects: list[Select[Any]] = []
        for number, term in enumerate(terms):
            # The configuration is written out, not bound, so that the function resolves to
            # phraseto_tsquery(regconfig, text), which does not depend on default_text_search_config.
            query = func.phraseto_tsquery(literal_column("'simple'::regconfig"), term.text)
            inner = (
                select(literal(number, Integer).label("term"), _pg_fts.c.seq)
                .where(_pg_fts.c.terms.bool_op("@@")(query), _pg_fts.c.vector_store_id.in_(store_ids))
                .limit(most + 1)
                .subquery()
            )
            selects.append(select(inner.c.term, inner.c.seq))
        statement = union_all(*selects)
    matched: list[list[int]] = [[] for _ in terms]
    for number, seq in (await conn.execute(statement)).tuples():
        matched[number].append(seq)
    return matched


def _fts5_string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _term_relevance(rows: _Chunks, matched: list[list[int]], most: int) -> npt.NDArray[np.float64]:
    """Per row, the sum of the inverse document frequencies of the terms it contains that are found in
    at most ``most`` chunks."""
    relevance = np.zeros(len(rows.similarity), dtype=np.float64)
    for found in matched:
        if not found or len(found) > most:
            continue
        located = np.unique(rows.rows_of(np.asarray(found, dtype=np.int64)))
        if len(located):
            # BM25's idf, as Lucene computes it (positive however common the term).
            relevance[located] += math.log(1 + (rows.count - len(located) + 0.5) / (len(located) + 0.5))
    return relevance


# -- filters ----------------------------------------------------------------------------------------------


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
