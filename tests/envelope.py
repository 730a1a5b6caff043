"""Checking OpenAI's error envelope, for every test file that asserts on failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

ERROR_KEYS = {"message", "type", "param", "code"}
ANY_PARAM = object()  # a `param` the test does not pin down (it must still be null or a string)
Param = str | None | tuple[str | None, ...] | object  # the param an error must name, or the choices


def assert_envelope(body: Any) -> dict[str, Any]:
    """The inner error of a body in OpenAI's error envelope: exactly its four keys, a message, and a
    type, param and code that are strings (param and code may be null)."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["type"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return dict(error)


def assert_error(response: httpx.Response, status: int, param: Param = ANY_PARAM) -> dict[str, Any]:
    """The inner error of a response that must have ``status``, OpenAI's envelope and ``param``."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    error = assert_envelope(response.json())
    assert error["type"] == "invalid_request_error", error
    if param is not ANY_PARAM:
        assert error["param"] in (param if isinstance(param, tuple) else (param,)), error
    return error


def sdk_error(call: Callable[[], object], status: int, param: Param = ANY_PARAM) -> dict[str, Any]:
    """Runs an SDK call that must fail with ``status``; returns the inner error the SDK hands to user
    code (``e.body``), which is the envelope's."""
    with pytest.raises(openai.APIStatusError) as info:
        call()
    error = assert_error(info.value.response, status, param)
    assert info.value.status_code == status
    assert info.value.body == error
    assert info.value.param == error["param"]
    return error
