"""Retrieval: ingestion throughput, search latency against brute-force numpy, and the recall of hybrid
search against vector-only search.

Run: ``.venv/bin/python bench/retrieval.py [--pages 20] [--sizes 10000,100000] [--queries 200]
[--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--pgvector]``

(a) Ingestion, through the API of an assistd on SQLite with its embedded model (multilingual-e5-small
on the CPU): a .docx of ``--pages`` pages of about 500 words of English each (sentences of the recall
set's documents, shuffled; written with python-docx, a page break after each page) is uploaded, put
in a new vector store, and the store polled every 50 ms until its file is indexed. Reported: pages/s
from the start of the upload to the poll that sees the file ``completed``, with the chunks made (default
chunking: 800 tokens, 400 overlapping) and the server's CPU.

(b) Search latency at ``--sizes`` chunks. Embedding that many chunks would take hours, so synthetic
chunks are written straight into a fresh database through assistd's tables (``assistd.store``), 100
chunks a file: random unit vectors of 384 dimensions, and texts of 60 words drawn from a Zipf
distribution over 20,000 made-up words, each numbered. Then ``assistd.retrieval.search.search()`` is
called in process, as the API's search calls it after embedding the query, against brute force on the
same vectors held in a numpy matrix (``matrix @ query``, then the top 10): each query, a random unit
vector (and for hybrid 2-6 words drawn like the texts, so usually common ones and sometimes a rare
one), goes to the three one after the other, in turn. Reported: p50/p99 of each and the ratio to
numpy; the first search, which reads the store's vectors into memory; and a check that vector-only
search returns exactly numpy's top 10.

(c) Recall on ``bench/data/retrieval.json``: short documents (look-alike part numbers, names and error
codes among them; English, Korean, Japanese, German) and queries with the document that answers each,
``keyword`` queries (an exact term of the answer) and ``paraphrase`` ones (no word of it). The documents
are indexed through the API of a fresh assistd; each query is embedded through ``/v1/embeddings`` (the
vector the API's search uses) and searched in process, with and without its text, on the server's
database; the API's own search answers are checked to be the hybrid ones. Reported: recall@1, @3, @10
and MRR (mean reciprocal rank of the answer, 0 when it is not in the top 10).

``--postgres`` (an admin URL) runs (b) and (c) on PostgreSQL too, in a database made and dropped here.
``--pgvector`` runs them on a PostgreSQL with pgvector as well, where the vector ranking is a query in the
database (migration 0006): the build that the ``pgserver`` package ships (a dev dependency), started in a
temporary directory and deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from common import (
    HEADERS,
    ServerProcess,
    assistd_server,
    command_line,
    ms,
    percentile,
    report_log,
    running,
    versions,
)
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from assistd.retrieval.search import Hit, search
from assistd.store import migrate, tables
from assistd.store.database import Database

PROJECT = tables.DEFAULT_PROJECT_ID
DATA = Path(__file__).parent / "data" / "retrieval.json"
WORDS_PER_PAGE = 500
DIMENSIONS = 384  # multilingual-e5-small's
CHUNKS_PER_FILE = 100
WORDS_PER_CHUNK = 60
VOCABULARY = 20_000
ZIPF_EXPONENT = 1.1
INSERT_BATCH = 2_000
LIMIT = 10  # results per search: the API's default
POLL_S = 0.05
INDEX_TIMEOUT_S = 1800.0
TIMEOUT = httpx.Timeout(120.0)


class BenchError(RuntimeError):
    pass


def checked(response: httpx.Response, what: str) -> Any:
    if response.status_code != 200:
        raise BenchError(f"{what} -> {response.status_code}: {response.text[:500]}")
    return response.json()


# -- words --------------------------------------------------------------------------------------------


class Words:
    """Made-up words (consonant-vowel syllables) drawn with Zipf frequencies: a few very common, most rare."""

    def __init__(self, rng: np.random.Generator, size: int = VOCABULARY) -> None:
        consonants, vowels = "bdfgklmnprstvz", "aeiou"
        words: list[str] = []
        seen: set[str] = set()
        while len(words) < size:
            syllables = int(rng.integers(1, 4))
            word = "".join(
                consonants[int(rng.integers(len(consonants)))] + vowels[int(rng.integers(len(vowels)))]
                for _ in range(syllables)
            )
            if word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        weights = 1.0 / np.arange(1, size + 1) ** ZIPF_EXPONENT
        self.cumulative = np.cumsum(weights / weights.sum())
        self.rng = rng

    def draw(self, count: int) -> list[str]:
        picks = np.searchsorted(self.cumulative, self.rng.random(count))
        return [self.words[min(int(pick), len(self.words) - 1)] for pick in picks]


def unit_vectors(rng: np.random.Generator, count: int) -> npt.NDArray[np.float32]:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


# -- (a) ingestion ------------------------------------------------------------------------------------


@dataclass
class Ingestion:
    pages: int
    words: int
    seconds: float
    chunks: int
    cpu: float


def make_docx(pages: int, rng: np.random.Generator) -> tuple[bytes, int]:
    """A .docx of ``pages`` pages (about WORDS_PER_PAGE words each, then a page break) of paragraphs of
    3-6 sentences drawn from the English documents of the recall set; and its words."""
    import docx
    from docx.enum.text import WD_BREAK

    documents = json.loads(DATA.read_text(encoding="utf-8"))["documents"]
    sentences = [
        sentence.strip() + "."
        for document in documents
        if document["text"].isascii()
        for sentence in document["text"].split(". ")
        if sentence.strip()
    ]
    document = docx.Document()
    total = 0
    for page in range(pages):
        document.add_heading(f"Section {page + 1}", level=2)
        written = 0
        while written < WORDS_PER_PAGE:
            chosen = [sentences[int(rng.integers(len(sentences)))] for _ in range(int(rng.integers(3, 7)))]
            paragraph = document.add_paragraph(" ".join(sentence.rstrip(".") + "." for sentence in chosen))
            written += sum(len(sentence.split()) for sentence in chosen)
        total += written
        paragraph.add_run().add_break(WD_BREAK.PAGE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue(), total


def measure_ingestion(server: ServerProcess, pages: int) -> Ingestion:
    data, words = make_docx(pages, np.random.default_rng(1))
    with httpx.Client(base_url=server.url, headers=_auth(), timeout=TIMEOUT) as http:
        cpu = server.cpu_seconds()
        started = time.perf_counter()
        upload = checked(
            http.post(
                "/v1/files",
                files={"file": ("report.docx", data)},
                data={"purpose": "assistants"},
            ),
            "upload",
        )
        store = checked(
            http.post("/v1/vector_stores", json={"name": "ingestion", "file_ids": [upload["id"]]}),
            "create store",
        )
        file = wait_indexed(http, store["id"], 1)
        seconds = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu
        if file["completed"] != 1:
            raise BenchError(f"the document was not indexed: {file}")
    return Ingestion(pages, words, seconds, 0, cpu)


def wait_indexed(http: httpx.Client, store_id: str, files: int) -> dict[str, int]:
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while True:
        store = checked(http.get(f"/v1/vector_stores/{store_id}"), "retrieve store")
        counts: dict[str, int] = store["file_counts"]
        if counts["in_progress"] == 0 and counts["total"] == files:
            return counts
        if time.monotonic() > deadline:
            raise BenchError(f"indexing did not finish in {INDEX_TIMEOUT_S} s: {counts}")
        time.sleep(POLL_S)


def _auth() -> dict[str, str]:
    return {"authorization": HEADERS["authorization"]}


# -- (b) latency --------------------------------------------------------------------------------------


@dataclass
class Latency:
    backend: str
    size: int
    insert_seconds: float
    first_search: float
    vector: list[float] = field(default_factory=list)
    hybrid: list[float] = field(default_factory=list)
    numpy: list[float] = field(default_factory=list)
    mismatches: int = 0


async def write_store(
    database: Database, store_id: str, vectors: npt.NDArray[np.float32], words: Words, first: int
) -> float:
    """A completed store of ``len(vectors)`` synthetic chunks, CHUNKS_PER_FILE to a file; seconds taken."""
    started = time.perf_counter()
    clock = int(time.time())
    async with database.write() as conn:
        await conn.execute(
            insert(tables.vector_stores).values(
                id=store_id, project_id=PROJECT, created_at=clock, name="synthetic", metadata={}
            )
        )
    count = len(vectors)
    for start in range(0, count, INSERT_BATCH):
        stop = min(count, start + INSERT_BATCH)
        file_ids = sorted({f"file-{store_id}-{n // CHUNKS_PER_FILE}" for n in range(start, stop)})
        async with database.write() as conn:
            await conn.execute(
                insert(tables.files),
                [
                    {
                        "id": file_id,
                        "project_id": PROJECT,
                        "created_at": clock,
                        "bytes": 1,
                        "filename": f"{file_id}.txt",
                        "purpose": "assistants",
                        "status": "processed",
                    }
                    for file_id in file_ids
                ],
            )
            await conn.execute(
                insert(tables.vector_store_files),
                [
                    {
                        "id": file_id,
                        "project_id": PROJECT,
                        "vector_store_id": store_id,
                        "created_at": clock,
                        "status": "completed",
                        "usage_bytes": 0,
                        "chunking_strategy": {"type": "static"},
                        "attributes": {},
                    }
                    for file_id in file_ids
                ],
            )
            rows = []
            for n in range(start, stop):
                body = " ".join(words.draw(WORDS_PER_CHUNK))
                rows.append(
                    {
                        "project_id": PROJECT,
                        "vector_store_id": store_id,
                        "file_id": f"file-{store_id}-{n // CHUNKS_PER_FILE}",
                        "chunk_index": n % CHUNKS_PER_FILE,
                        "text": f"Chunk {first + n}: {body}.",
                        "start_offset": 0,
                        "end_offset": 0,
                        "tokens": WORDS_PER_CHUNK,
                        "embedding": vectors[n].astype("<f4").tobytes(),
                    }
                )
            await conn.execute(insert(tables.vector_store_chunks), rows)
    return time.perf_counter() - started


def numpy_top(matrix: npt.NDArray[np.float32], query: npt.NDArray[np.float32]) -> list[int]:
    scores = matrix @ query
    top = np.argpartition(-scores, LIMIT)[:LIMIT]
    return [int(row) for row in top[np.argsort(-scores[top], kind="stable")]]


def chunk_number(hit: Hit) -> int:
    return int(hit.text.split(":", 1)[0].removeprefix("Chunk "))


async def measure_latency(backend: str, url: str, sizes: list[int], queries: int) -> list[Latency]:
    rng = np.random.default_rng(2)
    words = Words(rng)
    database = Database.from_url(url)
    results = []
    try:
        await migrate.upgrade(database)
        if await _has_vector_column(database) != (backend == "pgvector"):
            raise BenchError(f"{backend}: the vector column of migration 0006 is not as expected")
        first = 0
        for size in sizes:
            store_id = f"vs_bench_{size}"
            vectors = unit_vectors(rng, size)
            seconds = await write_store(database, store_id, vectors, words, first)
            if backend != "sqlite":
                # What autovacuum does after a bulk load, here without waiting for it: the planner reads
                # common terms by a sequential scan only once it knows they are common.
                async with database.write() as conn:
                    await conn.execute(text("ANALYZE"))
            print(f"  {backend}: wrote {size:,} chunks in {seconds:.0f} s", file=sys.stderr, flush=True)
            async with database.read() as conn:
                started = time.perf_counter()
                await search(conn, PROJECT, [store_id], [unit_vectors(rng, 1)[0].tolist()], limit=LIMIT)
                cold = time.perf_counter() - started
            latency = Latency(backend, size, seconds, cold)
            for _ in range(queries):
                query = unit_vectors(rng, 1)[0]
                as_list = query.tolist()
                words_of_query = " ".join(words.draw(int(rng.integers(2, 7))))
                async with database.read() as conn:
                    started = time.perf_counter()
                    hits = await search(conn, PROJECT, [store_id], [as_list], limit=LIMIT)
                    latency.vector.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await search(conn, PROJECT, [store_id], [as_list], texts=[words_of_query], limit=LIMIT)
                    latency.hybrid.append(time.perf_counter() - started)
                started = time.perf_counter()
                expected = numpy_top(vectors, query)
                latency.numpy.append(time.perf_counter() - started)
                if [chunk_number(hit) - first for hit in hits] != expected:
                    latency.mismatches += 1
            results.append(latency)
            first += size
    finally:
        await database.close()
    return results


# -- (c) recall ---------------------------------------------------------------------------------------


@dataclass
class Ranked:
    query: str
    kind: str
    language: str
    vector: int | None  # the answer's rank (1 = first) in the top LIMIT, None when absent
    hybrid: int | None


@dataclass
class Recall:
    backend: str
    documents: int
    ranked: list[Ranked]
    api_mismatches: int


def measure_recall(server: ServerProcess, database_url: str, backend: str) -> Recall:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    documents: list[dict[str, str]] = data["documents"]
    queries: list[dict[str, Any]] = data["queries"]
    with httpx.Client(base_url=server.url, headers=_auth(), timeout=TIMEOUT) as http:
        by_file: dict[str, str] = {}
        for document in documents:
            upload = checked(
                http.post(
                    "/v1/files",
                    files={"file": (f"{document['id']}.txt", document["text"].encode())},
                    data={"purpose": "assistants"},
                ),
                "upload",
            )
            by_file[upload["id"]] = document["id"]
        store = checked(
            http.post("/v1/vector_stores", json={"name": "recall", "file_ids": list(by_file)}), "create store"
        )
        counts = wait_indexed(http, store["id"], len(documents))
        if counts["completed"] != len(documents):
            raise BenchError(f"not every document was indexed: {counts}")
        texts = [item["query"] for item in queries]
        embedded = checked(
            http.post("/v1/embeddings", json={"model": "multilingual-e5-small", "input": texts}), "embeddings"
        )
        vectors = [item["embedding"] for item in sorted(embedded["data"], key=lambda item: item["index"])]
        api = [
            [
                by_file[item["file_id"]]
                for item in checked(
                    http.post(
                        f"/v1/vector_stores/{store['id']}/search",
                        json={"query": query, "max_num_results": LIMIT},
                    ),
                    "search",
                )["data"]
            ]
            for query in texts
        ]
    found = asyncio.run(_search_both(database_url, store["id"], texts, vectors))
    ranked = []
    mismatches = 0
    for item, (vector_hits, hybrid_hits), api_hits in zip(queries, found, api, strict=True):
        vector_ids = [by_file[hit.file_id] for hit in vector_hits]
        hybrid_ids = [by_file[hit.file_id] for hit in hybrid_hits]
        mismatches += hybrid_ids != api_hits
        answer = set(item["relevant"])
        ranked.append(
            Ranked(
                item["query"],
                item["kind"],
                item["language"],
                _rank(vector_ids, answer),
                _rank(hybrid_ids, answer),
            )
        )
    return Recall(backend, len(documents), ranked, mismatches)


async def _search_both(
    url: str, store_id: str, texts: list[str], vectors: list[list[float]]
) -> list[tuple[list[Hit], list[Hit]]]:
    database = Database.from_url(url)
    found = []
    try:
        async with database.read() as conn:
            for query, vector in zip(texts, vectors, strict=True):
                alone = await search(conn, PROJECT, [store_id], [vector], limit=LIMIT)
                both = await search(conn, PROJECT, [store_id], [vector], texts=[query], limit=LIMIT)
                found.append((alone, both))
    finally:
        await database.close()
    return found


def _rank(ids: list[str], answer: set[str]) -> int | None:
    return next((place for place, found in enumerate(ids, start=1) if found in answer), None)


# -- PostgreSQL ---------------------------------------------------------------------------------------


async def _has_vector_column(database: Database) -> bool:
    """Whether the chunks have the pgvector column of migration 0006, which search ranks by."""
    if database.engine.dialect.name != "postgresql":
        return False
    async with database.read() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'vector_store_chunks' AND column_name = 'embedding_vec'"
            )
        )
    return bool(found)


@contextmanager
def pgvector_server(root: Path) -> Iterator[str]:
    """A PostgreSQL with pgvector from the pgserver package, in ``root``, deleted after: its admin URL
    (a Unix socket)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import pgserver

        server = pgserver.get_server(root / "pgvector", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


async def _pg_admin(admin_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_pg_database(admin_url: str) -> str:
    name = f"assistd_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- report -------------------------------------------------------------------------------------------


def ingestion_table(result: Ingestion) -> str:
    return "\n".join(
        [
            "| document | words | chunks | seconds | pages/s | chunks/s | server CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| .docx, {result.pages} pages | {result.words:,} | {result.chunks} | {result.seconds:.1f} "
            f"| **{result.pages / result.seconds:.2f}** | {result.chunks / result.seconds:.2f} "
            f"| {result.cpu:.1f} |",
        ]
    )


def latency_table(results: list[Latency]) -> str:
    def cell(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"

    def ratio(values: list[float], floor: list[float]) -> str:
        return f"{percentile(values, 50) / percentile(floor, 50):.1f}x"

    lines = [
        "| database | chunks | written in s | first search ms | vector-only p50 / p99 ms "
        "| hybrid p50 / p99 ms | numpy p50 / p99 ms | ratio p50 vector-only / numpy "
        "| ratio p50 hybrid / numpy | top 10 as numpy's |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in results:
        lines.append(
            f"| {item.backend} | {item.size:,} | {item.insert_seconds:.0f} | {ms(item.first_search)} "
            f"| {cell(item.vector)} | {cell(item.hybrid)} | {cell(item.numpy)} "
            f"| **{ratio(item.vector, item.numpy)}** | **{ratio(item.hybrid, item.numpy)}** "
            f"| {len(item.vector) - item.mismatches}/{len(item.vector)} |"
        )
    return "\n".join(lines)


def recall_table(results: list[Recall]) -> str:
    def measures(ranks: Sequence[int | None]) -> str:
        def at(k: int) -> float:
            return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)

        mrr = sum(1 / rank for rank in ranks if rank is not None) / len(ranks)
        return f"{at(1):.2f} / {at(3):.2f} / **{at(10):.2f}** / {mrr:.3f}"

    lines = [
        "| database | queries | n | vector-only R@1 / R@3 / R@10 / MRR | hybrid R@1 / R@3 / R@10 / MRR "
        "| hybrid better / worse rank |",
        "|---|---|---:|---|---|---:|",
    ]
    for result in results:
        groups: list[tuple[str, Callable[[Ranked], bool]]] = [
            ("all", lambda _: True),
            ("keyword", lambda item: item.kind == "keyword"),
            ("paraphrase", lambda item: item.kind == "paraphrase"),
            ("non-English", lambda item: item.language != "en"),
        ]
        for name, keep in groups:
            chosen = [item for item in result.ranked if keep(item)]
            better = sum(1 for item in chosen if _place(item.hybrid) < _place(item.vector))
            worse = sum(1 for item in chosen if _place(item.hybrid) > _place(item.vector))
            lines.append(
                f"| {result.backend} | {name} | {len(chosen)} | {measures([item.vector for item in chosen])} "
                f"| {measures([item.hybrid for item in chosen])} | {better} / {worse} |"
            )
    return "\n".join(lines)


def _place(rank: int | None) -> int:
    return LIMIT + 1 if rank is None else rank


def changed_ranks(results: list[Recall]) -> str:
    lines = []
    for result in results:
        for item in result.ranked:
            if item.vector != item.hybrid:
                lines.append(
                    f"  {result.backend}: {item.query!r} ({item.kind}): {item.vector} -> {item.hybrid}"
                )
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=20, help="pages of the ingested document (20)")
    parser.add_argument(
        "--sizes",
        type=lambda value: [int(part) for part in value.split(",")],
        default=[10_000, 100_000],
        help="chunks in the stores searched for latency (10000,100000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="measured searches per size (200)")
    parser.add_argument("--postgres", help="a PostgreSQL admin URL: also run (b) and (c) on PostgreSQL")
    parser.add_argument(
        "--pgvector",
        action="store_true",
        help="also run (b) and (c) on a PostgreSQL with pgvector (the pgserver package's)",
    )
    parser.add_argument("--skip-ingestion", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    backends = ["sqlite", *(["postgres"] if args.postgres else []), *(["pgvector"] if args.pgvector else [])]
    ingestion: Ingestion | None = None
    latencies: list[Latency] = []
    recalls: list[Recall] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-bench-retrieval-")))
        admin_urls = {"postgres": args.postgres}
        if args.pgvector:
            admin_urls["pgvector"] = stack.enter_context(pgvector_server(root))
        for backend in backends:
            admin_url = admin_urls.get(backend)
            pg_url = create_pg_database(admin_url) if admin_url else None
            try:
                env = {"ASSISTD_DATABASE_URL": pg_url} if pg_url else {}
                server = assistd_server(root, env, name=f"assistd-{backend}")
                database_url = (
                    pg_url or f"sqlite+aiosqlite:///{root / f'assistd-{backend}-data' / 'assistd.db'}"
                )
                with running(server):
                    try:
                        if backend == "sqlite" and not args.skip_ingestion:
                            ingestion = measure_ingestion(server, args.pages)
                            print(f"  measured ingestion of {args.pages} pages", file=sys.stderr, flush=True)
                        recalls.append(measure_recall(server, database_url, backend))
                        print(f"  {backend}: measured recall", file=sys.stderr, flush=True)
                        if ingestion is not None and backend == "sqlite":
                            ingestion.chunks = asyncio.run(_ingested_chunks(database_url))
                    except BaseException:
                        report_log(server, always=True)
                        raise
                    report_log(server, always=False)
            finally:
                if admin_url and pg_url:
                    drop_pg_database(admin_url, pg_url)
            latency_url = create_pg_database(admin_url) if admin_url else None
            try:
                url = latency_url or f"sqlite+aiosqlite:///{root / 'latency.db'}"
                latencies += asyncio.run(measure_latency(backend, url, args.sizes, args.queries))
            finally:
                if admin_url and latency_url:
                    drop_pg_database(admin_url, latency_url)

    print("### Retrieval\n")
    print(f"Command: `{command_line()}`\n")
    print(f"{versions()}, numpy {np.__version__}, {os.cpu_count()} CPUs\n")
    if ingestion is not None:
        print("(a) Ingestion through the API (upload, vector store, poll), embedded model on the CPU\n")
        print(ingestion_table(ingestion) + "\n")
    print(
        f"(b) Search latency, in process, {args.queries} searches per size, top {LIMIT}; synthetic chunks "
        f"(random unit vectors of {DIMENSIONS} dimensions, {WORDS_PER_CHUNK} Zipf-distributed made-up words) "
        "written through assistd's tables, not embedded\n"
    )
    print(latency_table(latencies) + "\n")
    same = ", ".join(f"{r.backend}: {len(r.ranked) - r.api_mismatches}/{len(r.ranked)}" for r in recalls)
    print(
        f"(c) Recall on bench/data/{DATA.name} ({recalls[0].documents} documents), top {LIMIT}; the API's "
        f"answers were the in-process hybrid search's for {same} queries\n"
    )
    print(recall_table(recalls) + "\n")
    print("Rank of the answer that changed (vector-only -> hybrid; None = not in the top 10):\n")
    print(changed_ranks(recalls) + "\n")
    print(f"Took {time.monotonic() - started:.0f} s.")


async def _ingested_chunks(url: str) -> int:
    database = Database.from_url(url)
    try:
        async with database.read() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM vector_store_chunks c"
                    " JOIN vector_stores s ON s.id = c.vector_store_id WHERE s.name = 'ingestion'"
                )
            )
            return int(found or 0)
    finally:
        await database.close()


if __name__ == "__main__":
    main()
