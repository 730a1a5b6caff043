"""POST /v1/embeddings on the embedded multilingual-e5-small model, and relayed to an upstream."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.harness import Server
from tests.run_support import make_sdk

pytestmark = pytest.mark.backend("sqlite")  # embeddings store nothing

SENTENCES = [
    "The cat sat on the mat.",
    "고양이가 매트 위에 앉았다.",  # the same, in Korean
    "Stock markets fell sharply today.",
]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture
def vectors(client: openai.OpenAI) -> list[list[float]]:
    response = client.embeddings.create(model="text-embedding-3-small", input=SENTENCES)
    return [item.embedding for item in response.data]


def test_embeddings_are_normalised_in_order_and_counted(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model="text-embedding-3-small", input=SENTENCES)
    assert response.object == "list"
    assert response.model == "text-embedding-3-small"
    assert [item.index for item in response.data] == [0, 1, 2]
    assert all(item.object == "embedding" for item in response.data)
    for item in response.data:
        assert len(item.embedding) == 384
        assert math.isclose(math.sqrt(_dot(item.embedding, item.embedding)), 1.0, rel_tol=1e-4)
    assert response.usage.prompt_tokens == response.usage.total_tokens
    assert response.usage.prompt_tokens > len(SENTENCES)


def test_a_translation_is_nearer_than_another_topic(vectors: list[list[float]]) -> None:
    english, korean, markets = vectors
    assert _dot(english, korean) > _dot(english, markets) + 0.05
    assert _dot(korean, english) > _dot(korean, markets) + 0.05


def test_float_and_base64_encodings_agree(client: openai.OpenAI, http: httpx.Client) -> None:
    as_floats = client.embeddings.create(model="m", input="hello world", encoding_format="float")
    # The SDK asks for base64 by default and decodes it itself.
    as_base64 = client.embeddings.create(model="m", input="hello world")
    assert len(as_base64.data[0].embedding) == 384
    for a, b in zip(as_floats.data[0].embedding, as_base64.data[0].embedding, strict=True):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)

    raw = http.post(
        "/v1/embeddings", json={"model": "m", "input": "hello world", "encoding_format": "base64"}
    )
    assert raw.status_code == 200
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert len(encoded) == 4 * math.ceil(384 * 4 / 3)  # 384 float32 in base64


@pytest.mark.anyio
async def test_async_client(aclient: openai.AsyncOpenAI) -> None:
    response = await aclient.embeddings.create(model="m", input=["one", "two"])
    assert [len(item.embedding) for item in response.data] == [384, 384]
    assert response.data[0].embedding != response.data[1].embedding


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": ["ok", ""]}, "input[1]"),
        ({"model": "m", "input": [[1, 2, 3]]}, "input[0]"),
        ({"model": "m", "input": ["x"] * 2049}, "input"),
        ({"model": "m", "input": "x", "dimensions": 256}, "dimensions"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": "x", "bogus": 1}, "bogus"),
    ],
)
def test_bad_input_is_400_naming_the_param(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_an_upstream_embeds_instead(server: Server, start_server: Callable[..., Server]) -> None:
    """assistd relays /embeddings to another OpenAI-compatible server (here another assistd)."""
    relay = start_server(
        ASSISTD_EMBEDDINGS_BASE_URL=f"{server.url}/v1",
        ASSISTD_EMBEDDINGS_MODEL="upstream-model",
        ASSISTD_EMBEDDINGS_DIMENSIONS="384",
    )
    direct = make_sdk(server).embeddings.create(model="x", input=SENTENCES, encoding_format="float")
    relayed = make_sdk(relay).embeddings.create(model="text-embedding-3-small", input=SENTENCES)
    assert relayed.model == "text-embedding-3-small"
    assert relayed.usage.prompt_tokens == direct.usage.prompt_tokens
    for a, b in zip(direct.data, relayed.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)

    down = start_server(
        ASSISTD_EMBEDDINGS_BASE_URL="http://127.0.0.1:9/v1", ASSISTD_EMBEDDINGS_DIMENSIONS="384"
    )
    with pytest.raises(openai.APIStatusError) as caught:
        make_sdk(down).embeddings.create(model="x", input="hi")
    assert caught.value.status_code == 502
