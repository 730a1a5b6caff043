"""Cursor pagination: the SDK's auto-pager must see every item exactly once, in both orders."""

from __future__ import annotations

import openai
import pytest

from tests.openapi import assert_schema

COUNT = 25  # created well within one second: ties on created_at must not break the order


@pytest.fixture
def filled_thread(client: openai.OpenAI) -> tuple[str, list[str]]:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id for i in range(COUNT)
    ]
    return thread.id, ids


@pytest.mark.parametrize("limit", [1, 2, 7, 100])
def test_auto_pagination_walks_each_message_once(
    client: openai.OpenAI, filled_thread: tuple[str, list[str]], limit: int
) -> None:
    thread_id, ids = filled_thread
    ascending = [m.id for m in client.beta.threads.messages.list(thread_id, limit=limit, order="asc")]
    descending = [m.id for m in client.beta.threads.messages.list(thread_id, limit=limit, order="desc")]
    assert ascending == ids
    assert descending == ids[::-1]


def test_page_fields(client: openai.OpenAI, filled_thread: tuple[str, list[str]]) -> None:
    thread_id, ids = filled_thread
    raw = client.beta.threads.messages.with_raw_response.list(thread_id, limit=3, order="asc")
    body = raw.http_response.json()
    assert_schema("ListMessagesResponse", body)
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ids[:3]
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[0], ids[2], True)

    last = client.beta.threads.messages.list(thread_id, limit=3, order="asc", after=ids[-3])
    assert [m.id for m in last.data] == ids[-2:]
    assert last.has_more is False
    assert last.last_id == ids[-1]


def test_empty_page(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    body = client.beta.threads.messages.with_raw_response.list(thread.id).http_response.json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_before_returns_the_items_just_before_the_cursor(
    client: openai.OpenAI, filled_thread: tuple[str, list[str]]
) -> None:
    thread_id, ids = filled_thread
    page = client.beta.threads.messages.list(thread_id, limit=3, order="asc", before=ids[10])
    assert [m.id for m in page.data] == ids[7:10]
    assert page.has_more is True
    page = client.beta.threads.messages.list(thread_id, limit=3, order="desc", before=ids[10])
    assert [m.id for m in page.data] == [ids[13], ids[12], ids[11]]
    page = client.beta.threads.messages.list(thread_id, limit=5, order="asc", before=ids[2])
    assert [m.id for m in page.data] == ids[:2]
    assert page.has_more is False


def test_after_and_before_together(client: openai.OpenAI, filled_thread: tuple[str, list[str]]) -> None:
    thread_id, ids = filled_thread
    page = client.beta.threads.messages.list(thread_id, order="asc", after=ids[3], before=ids[8])
    assert [m.id for m in page.data] == ids[4:8]


def test_get_next_page(client: openai.OpenAI, filled_thread: tuple[str, list[str]]) -> None:
    thread_id, ids = filled_thread
    page = client.beta.threads.messages.list(thread_id, limit=10, order="asc")
    seen = [m.id for m in page.data]
    while page.has_next_page():
        page = page.get_next_page()
        seen += [m.id for m in page.data]
    assert seen == ids


def test_cursor_from_another_thread_is_refused(
    client: openai.OpenAI, filled_thread: tuple[str, list[str]]
) -> None:
    _, ids = filled_thread
    other = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.messages.list(other.id, after=ids[0])
    assert info.value.param == "after"
