"""Searching the chunks of vector stores: vector similarity and full text, fused by reciprocal rank
fusion, with OpenAI's attribute filters.

A search ranks the chunks of the stores asked for twice:

* **by vector**: cosine similarity (embeddings are unit vectors) to the nearest of the query vectors,
  exact, over every chunk (numpy);
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

Reading: the vectors of a store (not its texts) are kept in memory per process (:class:`_Cache`, at
most :data:`CACHE_BYTES`) with the store's ``chunk_version``, which triggers move in the same transaction
as any change to its chunks, whichever process makes it; a search reads that counter and reads the
vectors again only when it has moved. Texts are read for the hits only.
"""

from __future__ import annotations

import math
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Integer,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable, Select

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
    rows = _Rows(await _snapshots(conn, project_id, store_ids))
    if not rows.count:
        return []
    if filters:
        rows.keep(await _completed_files(conn, project_id, store_ids), filters)
    similarity = rows.similarity(np.asarray(queries, dtype=np.float32))

    lists = [_top(similarity, rows.allowed)]
    terms = query_terms(texts, dialect=conn.dialect.name)
    if terms:
        most = _most_chunks(rows.count)
        matched = await _term_matches(conn, store_ids, terms, most)
        relevance = _term_relevance(rows, matched, most)
        lists.append(_top_by_text(relevance, similarity, rows.allowed))

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


async def _snapshots(conn: AsyncConnection, project_id: str, store_ids: list[str]) -> list[_Snapshot]:
    """The stores' snapshots, read again for the stores whose chunk version has moved.

    The version is read before the chunks, so a snapshot is never older than the version it is kept
    under: a change committed in between makes the version move again, and the next search reads again.
    """
    result = await conn.execute(
        select(stores.c.id, stores.c.chunk_version).where(
            stores.c.project_id == project_id, stores.c.id.in_(store_ids)
        )
    )
    versions = {store_id: version for store_id, version in result.tuples()}
    found: list[_Snapshot] = []
    for store_id in store_ids:
        key = (conn.engine.url.render_as_string(), project_id, store_id)
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


class _Rows:
    """The chunks of one search, numbered across the stores' snapshots: store k's row i is row
    ``offsets[k] + i``. ``allowed`` marks the chunks that may be found (None: all of them); ``files``
    are the searchable files read so far, by (store, file)."""

    def __init__(self, snapshots: list[_Snapshot]) -> None:
        self.snapshots = snapshots
        sizes = [len(snapshot.seqs) for snapshot in snapshots]
        self.offsets = np.cumsum([0, *sizes])
        self.count = int(self.offsets[-1])
        self.allowed: npt.NDArray[np.bool_] | None = None
        self.files: dict[tuple[str, str], _File] = {}

    def keep(self, found: dict[tuple[str, str], _File], filters: dict[str, Any]) -> None:
        """Allows only the chunks of the files ``found`` whose attributes match ``filters``."""
        self.files = found
        masks = []
        for snapshot in self.snapshots:
            codes = [
                code
                for code, file_id in enumerate(snapshot.files)
                if (file := found.get((snapshot.store_id, file_id))) is not None
                and matches(filters, file.attributes)
            ]
            masks.append(np.isin(snapshot.codes, np.asarray(codes, dtype=np.int32)))
        self.allowed = np.concatenate(masks)

    def file_of(self, row: int) -> tuple[str, str]:
        snapshot, index = self.locate(row)
        return snapshot.store_id, snapshot.files[snapshot.codes[index]]

    def similarity(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Each row's cosine similarity to the nearest query vector."""
        parts = [(snapshot.matrix @ queries.T).max(axis=1) for snapshot in self.snapshots]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def rows_of(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """The rows of the chunks ``seqs`` that are in the snapshots, in no particular order."""
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
    conn: AsyncConnection, project_id: str, rows: _Rows, chosen: list[tuple[int, float]]
) -> list[Hit]:
    """The chosen rows as hits, in order, with their texts. A chunk deleted meanwhile is left out, also
    when SQLite has given its seq to a chunk written since (it reuses the highest row ids)."""
    if not chosen:
        return []
    located = [(rows.locate(row), score) for row, score in chosen]
    seqs = [int(snapshot.seqs[index]) for (snapshot, index), _ in located]
    result = await conn.execute(
        select(chunks.c.seq, chunks.c.vector_store_id, chunks.c.file_id, chunks.c.text).where(
            chunks.c.project_id == project_id, chunks.c.seq.in_(seqs)
        )
    )
    texts = {(seq, store_id, file_id): body for seq, store_id, file_id, body in result.tuples()}
    hits = []
    for seq, ((snapshot, index), score) in zip(seqs, located, strict=True):
        file_id = snapshot.files[snapshot.codes[index]]
        body = texts.get((seq, snapshot.store_id, file_id))
        if body is not None:
            file = rows.files[snapshot.store_id, file_id]
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


def _term_relevance(rows: _Rows, matched: list[list[int]], most: int) -> npt.NDArray[np.float64]:
    """Per row, the sum of the inverse document frequencies of the terms it contains that are found in
    at most ``most`` chunks."""
    relevance = np.zeros(rows.count, dtype=np.float64)
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
