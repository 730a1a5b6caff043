"""Hybrid search: full text next to vectors, through the SDK.

A search ranks chunks by vector similarity and by the query's words, and fuses the two orders; each
result's ``score`` stays its cosine similarity. So where the results of a query come in an order that
the scores alone would not give, full text put them there. The documents are chosen so that the
embedding model ranks the one with the exact term asked for (a part number among look-alike ones, a
Japanese name among look-alike ones) below others: it can only come first by its words.

These tests also run on PostgreSQL with pgvector, where the vector ranking is a query in the database
(migration 0006) rather than numpy over vectors kept in memory; the last ones check that it is, and
that it ranks as numpy does.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import struct
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import make_client
from tests.harness import Server, create_pg_database, drop_pg_database
from tests.test_vector_stores import TIMEOUT, add_file, hits, search_body, store_with, upload, wait_store

pytestmark = pytest.mark.pgvector

# One report mentions part XK-4471 in passing; the others are product sheets of parts whose numbers look
# alike (KX-4471, XK-4472, ...), which is what the embedding model finds closest to "XK-4471".
WAREHOUSE = (
    "Warehouse report for week 12. Forklift inspections were completed on Monday. The loading dock "
    "lights were replaced. Two pallets of part XK-4471 arrived damaged and were sent back to the "
    "supplier. Overtime was approved for the night shift because of the holiday backlog."
)
SHEETS = {
    "xk-4417.txt": "XK-4417 cordless drill: 18 V, 4 Ah battery, variable speed, LED work light.",
    "xk-4771.txt": "XK-4771 impact driver: 18 V, 2 Ah battery, three torque settings.",
    "kx-4471.txt": "KX-4471 hammer drill: corded, side handle, depth stop.",
    "xk-4470.txt": "XK-4470 jigsaw: 18 V, pendulum action, tool-free blade change.",
    "xk-4472.txt": "XK-4472 angle grinder: 18 V, 125 mm disc, brake.",
}
CODE = "XK-4471"
# Minutes that name 鷲尾健太 (Washio Kenta), among notes on people whose names share characters with his.
MINUTES_JA = (
    "定例会議の議事録。来月の展示会の準備について話し合った。会場の予約は完了し、パンフレットの印刷は"
    "来週に発注する。鷲尾健太さんが新しい物流の担当者として四月から参加する。"
)
PEOPLE_JA = {
    "washimi.txt": "鷲見健一さんは営業部の部長で、関西地区の顧客を担当している。",
    "sagio.txt": "鷺尾健二さんは経理部に所属し、月次決算を取りまとめている。",
    "ozaki.txt": "尾崎健太さんは開発部のエンジニアで、在庫管理システムを担当している。",
    "washida.txt": "鷲田太郎さんは人事部で採用と研修を担当している。",
}
HAEUNDAE_KO = "부산 해운대 해수욕장은 여름마다 관광객으로 붐비며, 근처에 유명한 돼지국밥 식당이 많다."
SUBWAY_KO = "서울 지하철 2호선은 도심을 한 바퀴 도는 순환선이며, 출퇴근 시간에는 매우 붐빈다."

Found = list[tuple[str, float, str]]


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    return client.with_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def parts(server: Server) -> tuple[str, str, dict[str, str]]:
    """A store of the report and the product sheets (made once per backend: embedding is slow); the
    report's file id, and the sheets' by filename. The report has ``{"kind": "report"}``, the sheets
    ``{"kind": "sheet"}``."""
    with make_client(server, timeout=TIMEOUT) as sdk:
        documents = [("warehouse.txt", WAREHOUSE.encode())]
        documents += [(name, text.encode()) for name, text in SHEETS.items()]
        store_id, ids = store_with(sdk, *documents)
        for file_id in ids:
            kind = "report" if file_id == ids[0] else "sheet"
            sdk.vector_stores.files.update(file_id, vector_store_id=store_id, attributes={"kind": kind})
    return store_id, ids[0], dict(zip(SHEETS, ids[1:], strict=True))


def in_score_order(found: Found) -> bool:
    scores = [score for _, score, _ in found]
    return scores == sorted(scores, reverse=True)


def test_an_exact_part_number_comes_first(sdk: openai.OpenAI, parts: tuple[str, str, dict[str, str]]) -> None:
    store_id, report, sheets = parts
    found = hits(sdk, store_id, CODE)
    assert [file_id for file_id, _, _ in found][:2] == [report, sheets["xk-4472.txt"]]
    assert found[0][2] == WAREHOUSE
    assert {file_id for file_id, _, _ in found} == {report, *sheets.values()}
    assert all(0.0 < score <= 1.0 for _, score, _ in found)
    # By score alone (the embedding's view) the report would not be first: the look-alikes score higher.
    assert found[0][1] < max(score for _, score, _ in found)
    # Nothing else contains the number, so the rest keeps the embedding's order.
    assert in_score_order(found[1:])
    # In a question, too, and whatever its case.
    assert hits(sdk, store_id, "What happened to xk-4471?")[0][0] == report


def test_filters_apply_to_what_full_text_finds(
    sdk: openai.OpenAI, parts: tuple[str, str, dict[str, str]]
) -> None:
    store_id, report, sheets = parts
    only_sheets = hits(sdk, store_id, CODE, filters={"type": "eq", "key": "kind", "value": "sheet"})
    assert {file_id for file_id, _, _ in only_sheets} == set(sheets.values())
    assert in_score_order(only_sheets)
    only_report = hits(sdk, store_id, CODE, filters={"type": "eq", "key": "kind", "value": "report"})
    assert [file_id for file_id, _, _ in only_report] == [report]


def test_score_threshold_applies_to_what_full_text_finds(
    sdk: openai.OpenAI, parts: tuple[str, str, dict[str, str]]
) -> None:
    store_id, report, _ = parts
    found = hits(sdk, store_id, CODE)
    report_score = found[0][1]
    kept = hits(sdk, store_id, CODE, ranking_options={"score_threshold": report_score})
    assert kept[0][0] == report
    assert [file_id for file_id, _, _ in kept] == [
        file_id for file_id, score, _ in found if score >= report_score
    ]
    # Just above the report's score: the report goes, however well its words match; the rest stays.
    above = hits(sdk, store_id, CODE, ranking_options={"score_threshold": report_score + 1e-4})
    assert report not in {file_id for file_id, _, _ in above}
    assert above == [hit for hit in found if hit[1] >= report_score + 1e-4]
    assert above  # the look-alikes score higher than the report


def test_max_num_results_cuts_the_fused_order(
    sdk: openai.OpenAI, parts: tuple[str, str, dict[str, str]]
) -> None:
    store_id, _, _ = parts
    every = hits(sdk, store_id, CODE, max_num_results=50)
    assert len(every) == 1 + len(SHEETS)
    for limit in (1, 2, 5):
        assert hits(sdk, store_id, CODE, max_num_results=limit) == every[:limit]


def test_a_japanese_name_comes_first(sdk: openai.OpenAI) -> None:
    documents = [("minutes.txt", MINUTES_JA.encode())]
    documents += [(name, text.encode()) for name, text in PEOPLE_JA.items()]
    documents += [("haeundae.txt", HAEUNDAE_KO.encode()), ("subway.txt", SUBWAY_KO.encode())]
    store_id, ids = store_with(sdk, *documents)
    minutes, haeundae = ids[0], ids[-2]
    found = hits(sdk, store_id, "鷲尾健太")
    assert found[0][0] == minutes
    assert found[0][2] == MINUTES_JA
    assert found[0][1] < max(score for _, score, _ in found)  # not first by score
    found = hits(sdk, store_id, "해운대 돼지국밥")
    assert found[0][0] == haeundae
    assert found[0][2] == HAEUNDAE_KO


def test_several_queries_search_the_words_of_each(
    sdk: openai.OpenAI, parts: tuple[str, str, dict[str, str]]
) -> None:
    store_id, report, sheets = parts
    body = search_body(sdk, store_id, ["pendulum", CODE])
    assert body["search_query"] == ["pendulum", CODE]
    found = [item["file_id"] for item in body["data"]]
    assert set(found[:2]) == {report, sheets["xk-4470.txt"]}
    assert body["data"][found.index(report)]["attributes"] == {"kind": "report"}


def test_deleted_chunks_leave_the_full_text_index(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="deletions")
    grinder, _ = add_file(sdk, store.id, "xk-4472.txt", SHEETS["xk-4472.txt"].encode())
    report, _ = add_file(sdk, store.id, "warehouse.txt", WAREHOUSE.encode())
    assert hits(sdk, store.id, CODE)[0][0] == report.id

    # Deleted, the report's chunks leave the index: nothing is ranked by the number any more. The file
    # indexed next takes the place the report's chunk had (SQLite reuses the highest row ids), so a
    # stale entry would now lift it.
    assert sdk.files.delete(report.id).deleted
    menu, _ = add_file(sdk, store.id, "menu.txt", b"Catering for the spring party: soup, bread and cake.")
    found = hits(sdk, store.id, CODE)
    assert {file_id for file_id, _, _ in found} == {grinder.id, menu.id}
    assert in_score_order(found)

    # A file added now is found by the number; taken out of the store, it is not.
    again, _ = add_file(sdk, store.id, "warehouse-copy.txt", WAREHOUSE.encode())
    assert hits(sdk, store.id, CODE)[0][0] == again.id
    sdk.vector_stores.files.delete(again.id, vector_store_id=store.id)
    found = hits(sdk, store.id, CODE)
    assert {file_id for file_id, _, _ in found} == {grinder.id, menu.id}
    assert in_score_order(found)


def test_a_store_and_its_index_go_together(sdk: openai.OpenAI) -> None:
    """Stores do not see each other's chunks by their words, and a deleted store's chunks leave."""
    first = sdk.vector_stores.create(name="first")
    second = sdk.vector_stores.create(name="second")
    report = upload(sdk, "warehouse.txt", WAREHOUSE.encode())
    sheet = upload(sdk, "xk-4472.txt", SHEETS["xk-4472.txt"].encode())
    sdk.vector_stores.files.create(vector_store_id=first.id, file_id=report.id)
    sdk.vector_stores.files.create(vector_store_id=second.id, file_id=sheet.id)
    wait_store(sdk, first.id)
    wait_store(sdk, second.id)
    assert [file_id for file_id, _, _ in hits(sdk, second.id, CODE)] == [sheet.id]
    assert [file_id for file_id, _, _ in hits(sdk, first.id, CODE)] == [report.id]
    assert sdk.vector_stores.delete(first.id).deleted
    assert [file_id for file_id, _, _ in hits(sdk, second.id, CODE)] == [sheet.id]


def test_another_process_sees_every_change(server: Server) -> None:
    """A process keeps the vectors of the stores it searched in memory: one that only searches still
    finds what another process adds to a store afterwards, and stops finding what it deletes."""
    other = Server(data_dir=server.data_dir, env=dict(server.env)).start()
    try:
        with make_client(server, timeout=TIMEOUT) as writer, make_client(other, timeout=TIMEOUT) as reader:
            store = writer.vector_stores.create(name="two processes")
            grinder, _ = add_file(writer, store.id, "xk-4472.txt", SHEETS["xk-4472.txt"].encode())
            assert [file_id for file_id, _, _ in hits(reader, store.id, CODE)] == [grinder.id]
            report, _ = add_file(writer, store.id, "warehouse.txt", WAREHOUSE.encode())
            assert [file_id for file_id, _, _ in hits(reader, store.id, CODE)] == [report.id, grinder.id]
            assert writer.files.delete(report.id).deleted
            assert [file_id for file_id, _, _ in hits(reader, store.id, CODE)] == [grinder.id]
    finally:
        other.stop()


# -- pgvector ---------------------------------------------------------------------------------------------

# A question that shares no word with the report or the sheets: full text finds nothing, and the order is
# the vector ranking's.
NO_SHARED_WORD = "Which saw makes curved cuts?"


def fetch(database_url: str, query: str, *args: object) -> list[Any]:
    """The rows of ``query`` on a server's database (its ASSISTD_DATABASE_URL)."""
    import asyncpg  # the server's driver: absent from the client-only environment, which has no PostgreSQL

    async def run() -> list[Any]:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def floats(embedding: bytes) -> tuple[float, ...]:
    """Stored embedding bytes (float32, little-endian) as numbers."""
    return struct.unpack(f"<{len(embedding) // 4}f", embedding)


def same_floats(vector: list[float] | None, embedding: bytes) -> bool:
    """Whether ``vector`` (a ``real[]`` read back) is the float32 bytes ``embedding``, bit for bit."""
    return vector is not None and struct.pack(f"<{len(vector)}f", *vector) == embedding


@pytest.mark.backend("pgvector")
def test_pgvector_ranks_in_the_database(server: Server, sdk: openai.OpenAI) -> None:
    """Each chunk's vector in the database is its embedding, and search returns the ranking and the
    scores that numpy computes from the embeddings; changed by hand, the vector in the database is what
    ranks, so the ranking is done there."""
    documents = [("warehouse.txt", WAREHOUSE), *SHEETS.items()]
    words = {word for _, body in documents for word in re.findall(r"\w+", body.lower())}
    assert not words & set(re.findall(r"\w+", NO_SHARED_WORD.lower()))
    store_id, _ = store_with(sdk, *[(name, body.encode()) for name, body in documents])
    database_url = server.env["ASSISTD_DATABASE_URL"]
    chunks = fetch(
        database_url,
        "SELECT file_id, embedding, embedding_vec::real[] AS vector FROM vector_store_chunks"
        " WHERE vector_store_id = $1",
        store_id,
    )
    assert len(chunks) == len(documents)  # a chunk each
    assert all(same_floats(chunk["vector"], chunk["embedding"]) for chunk in chunks)

    embedded = sdk.embeddings.create(model="multilingual-e5-small", input=NO_SHARED_WORD)
    query = embedded.data[0].embedding
    # What the ranking in memory computes: the dot product of the stored embedding and the query vector.
    by_numpy = {
        chunk["file_id"]: math.fsum(a * b for a, b in zip(floats(chunk["embedding"]), query, strict=True))
        for chunk in chunks
    }
    found = hits(sdk, store_id, NO_SHARED_WORD)
    assert in_score_order(found)
    assert {file_id: score for file_id, score, _ in found} == pytest.approx(by_numpy, abs=1e-5)

    # The vector of the farthest chunk made the query's own: it comes first, with a score of 1. Its
    # embedding's bytes, which a ranking in memory would read, are as they were.
    farthest = min(by_numpy, key=by_numpy.__getitem__)
    fetch(
        database_url,
        "UPDATE vector_store_chunks SET embedding_vec = $1::real[]::vector"
        " WHERE vector_store_id = $2 AND file_id = $3",
        query,
        store_id,
        farthest,
    )
    found = hits(sdk, store_id, NO_SHARED_WORD)
    assert found[0][0] == farthest
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)


def chunk_embeddings() -> dict[str, bytes]:
    """Embeddings by file id: random float32 values, the edge cases of the format, and bytes that are
    no vector pgvector takes (a NaN, none, not a multiple of 4)."""
    rng = random.Random(7)
    values = [struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0] for _ in range(384)]
    values = [value if math.isfinite(value) else 1.5 for value in values]
    # Zero and minus zero, the smallest subnormal, the largest negative subnormal, the smallest normal,
    # the largest float32, and two ordinary values.
    edges = [0.0, -0.0, 1e-45, -1.1754942e-38, 1.1754944e-38, 3.4028235e38, -2.5, 1 / 3]
    return {
        "random": struct.pack("<384f", *values),
        "edges": struct.pack("<8f", *edges),
        "nan": struct.pack("<2f", 0.5, math.nan),
        "empty": b"",
        "odd": b"\0\0\0",
    }


@pytest.mark.anyio
async def test_the_vector_column_follows_the_embeddings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Migration 0006 on a database with chunks: with pgvector, every chunk gets the vector of its
    embedding's bytes, exactly (NULL for bytes that are none), inserts and updates of embeddings keep it
    in step, and a downgrade takes it away; without pgvector (SQLite, the machine's PostgreSQL) it adds
    nothing, and search ranks in memory."""
    pytest.importorskip("alembic")  # the server's own code: absent from the client-only environment
    from sqlalchemy import text

    from assistd.store import migrate
    from assistd.store.database import Database

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vectors.db'}"
    elif backend == "postgres":
        url = create_pg_database()
    else:
        url = create_pg_database(request.getfixturevalue("pgvector_admin_url"))
    embeddings = chunk_embeddings()
    insert = text(
        "INSERT INTO vector_store_chunks (project_id, vector_store_id, file_id, chunk_index, text,"
        " start_offset, end_offset, tokens, embedding)"
        " VALUES ('proj_v', 'vs_v', :file, 0, 'x', 0, 1, 1, :embedding)"
    )
    read = text("SELECT file_id, embedding, embedding_vec::real[] FROM vector_store_chunks")
    database = Database.from_url(url)

    async def columns() -> set[str]:
        async with database.read() as conn:
            return set((await conn.execute(text("SELECT * FROM vector_store_chunks LIMIT 0"))).keys())

    async def check_vectors() -> None:
        async with database.read() as conn:
            for file_id, embedding, vector in (await conn.execute(read)).tuples():
                if file_id in ("nan", "empty", "odd"):
                    assert vector is None, file_id
                else:
                    assert same_floats(vector, embedding), file_id

    try:
        await migrate.upgrade(database, "0005")
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO projects VALUES ('proj_v', 'v', 0)"))
            await conn.execute(
                text(
                    "INSERT INTO vector_stores (id, project_id, created_at, name)"
                    " VALUES ('vs_v', 'proj_v', 0, '')"
                )
            )
            for file_id in ("random", "nan", "empty"):
                await conn.execute(insert, {"file": file_id, "embedding": embeddings[file_id]})
        await migrate.upgrade(database)
        if backend != "pgvector":
            assert "embedding_vec" not in await columns()
            return

        await check_vectors()  # the chunks there before
        async with database.write() as conn:
            for file_id in ("edges", "odd"):
                await conn.execute(insert, {"file": file_id, "embedding": embeddings[file_id]})
            await conn.execute(
                text("UPDATE vector_store_chunks SET embedding = :embedding WHERE file_id = 'random'"),
                {"embedding": embeddings["edges"]},
            )
            await conn.execute(text("UPDATE vector_store_chunks SET text = 'y' WHERE file_id = 'edges'"))
        await check_vectors()

        async with database.write() as conn:
            await conn.run_sync(lambda sync: migrate.command.downgrade(migrate.alembic_config(sync), "0005"))
        assert "embedding_vec" not in await columns()
        await migrate.upgrade(database)
        await check_vectors()
    finally:
        await database.close()
        if backend != "sqlite":
            drop_pg_database(url)
