"""Decoding a string field of tool-call arguments while they stream (code_interpreter's input)."""

from __future__ import annotations

import json

import pytest

from assistd.runs.streamed_json import StreamedField, partial_string

CODE = 'print("héllo")\n\tx = "a\\\\b" # 😀 \u00e9'


def test_every_prefix_decodes_to_a_prefix_of_the_value() -> None:
    text = json.dumps({"code": CODE})
    for cut in range(len(text) + 1):
        decoded = partial_string(text[:cut], "code")
        assert CODE.startswith(decoded), (cut, text[:cut], decoded)
    assert partial_string(text, "code") == CODE


def test_ascii_escaped_text_too() -> None:
    text = json.dumps({"other": 1, "code": CODE}, ensure_ascii=True)
    seen = [partial_string(text[:cut], "code") for cut in range(len(text) + 1)]
    assert all(CODE.startswith(value) for value in seen)
    assert seen[-1] == CODE
    # The emoji is an escaped surrogate pair: no prefix ever holds half of it.
    assert not any(value and "\ud83d" <= value[-1] <= "\udbff" for value in seen)


def test_streamed_field_returns_only_what_is_new() -> None:
    text = json.dumps({"code": CODE})
    field = StreamedField("code")
    pieces = [field.feed(text[:cut]) for cut in range(0, len(text) + 1, 3)]
    pieces.append(field.feed(text))
    assert "".join(pieces) == CODE


def test_an_escaped_backslash_before_u_is_text() -> None:
    code = "print('\\\\ud83d')"  # the characters backslash, u, d, 8, 3, d
    text = json.dumps({"code": code})
    assert all(code.startswith(partial_string(text[:cut], "code")) for cut in range(len(text) + 1))
    assert partial_string(text, "code") == code


def test_a_long_field_streams_in_linear_time() -> None:
    code = "x = 1\n" * 20_000
    text = json.dumps({"code": code})
    field = StreamedField("code")
    pieces = [field.feed(text[:cut]) for cut in range(4, len(text) + 4, 4)]
    assert "".join(pieces) == code


@pytest.mark.parametrize("text", ["", "{", '{"cod', '{"code"', '{"code": ', '{"language": "python"}'])
def test_no_value_yet(text: str) -> None:
    assert partial_string(text, "code") == ""
