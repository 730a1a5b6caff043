"""The code_interpreter tool in runs: code steps, logs, images, files, kernel state, through the SDK.

The scripted model runs the fenced block after a ``/code`` line, then replies with the last line the
code printed, a word on each image and a ``sandbox:`` link to each file (docs/scripted-model.md). The
code runs for real, in the sandbox (tests/test_sandbox.py tests the sandbox itself).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.beta import CodeInterpreterToolParam
from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import CodeInterpreterToolCall, RunStep

from tests.harness import Server
from tests.run_support import (
    DELTAS,
    SERVER_TOOL_THEN_ANSWER,
    RecordingHandler,
    make_sdk,
    only_assistant_reply,
    text_of,
    wait_for_run,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (bubblewrap) is not installed"),
    # What code does is the same whichever database keeps the run; the suite's time is spent once.
    pytest.mark.backend("sqlite"),
]

CODE_INTERPRETER: list[CodeInterpreterToolParam] = [{"type": "code_interpreter"}]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_TIMEOUT = 30.0  # a cold kernel importing pandas and matplotlib takes a second or two


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    return client.with_options(timeout=RUN_TIMEOUT)


@pytest.fixture
def assistant_id(sdk: openai.OpenAI) -> str:
    return sdk.beta.assistants.create(model="gpt-4o", tools=CODE_INTERPRETER).id


def code_message(code: str) -> str:
    return f"/code\n```python\n{code}\n```"


def run_code(
    sdk: openai.OpenAI, assistant_id: str, code: str, thread_id: str | None = None
) -> tuple[str, str]:
    """A run of ``code`` (on a new thread unless one is given), polled to its end: (thread id, run id)."""
    if thread_id is None:
        thread_id = sdk.beta.threads.create().id
    sdk.beta.threads.messages.create(thread_id, role="user", content=code_message(code))
    run = sdk.beta.threads.runs.create(thread_id, assistant_id=assistant_id)
    final = wait_for_run(sdk, thread_id, run.id, timeout=RUN_TIMEOUT)
    assert final.status == "completed", final.last_error
    return thread_id, run.id


def code_call(sdk: openai.OpenAI, thread_id: str, run_id: str) -> CodeInterpreterToolCall:
    steps = list(sdk.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc"))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"], steps
    assert [step.status for step in steps] == ["completed", "completed"]
    return only_code_call(steps[0])


def only_code_call(step: RunStep) -> CodeInterpreterToolCall:
    assert step.step_details.type == "tool_calls"
    [call] = step.step_details.tool_calls
    assert isinstance(call, CodeInterpreterToolCall), call
    return call


def logs_of(call: CodeInterpreterToolCall) -> str:
    return "".join(output.logs for output in call.code_interpreter.outputs if output.type == "logs")


def image_ids(call: CodeInterpreterToolCall) -> list[str]:
    return [output.image.file_id for output in call.code_interpreter.outputs if output.type == "image"]


def text_part(message: Message) -> Any:
    [part] = [part for part in message.content if part.type == "text"]
    return part.text


def test_solves_an_equation_by_running_code(sdk: openai.OpenAI, assistant_id: str) -> None:
    code = "x = (14 - 11) / 3\nprint(f'x = {x}')"
    thread_id, run_id = run_code(sdk, assistant_id, code)
    call = code_call(sdk, thread_id, run_id)
    assert call.id.startswith("call_")
    assert call.code_interpreter.input == code
    assert logs_of(call) == "x = 1.0\n"
    assert text_of(only_assistant_reply(sdk, thread_id, run_id)) == "x = 1.0"

    raw = sdk.beta.threads.runs.steps.with_raw_response.list(run_id, thread_id=thread_id, order="asc")
    raw_call = raw.http_response.json()["data"][0]["step_details"]["tool_calls"][0]
    assert set(raw_call) == {"id", "type", "code_interpreter"}
    assert raw_call["code_interpreter"] == {"input": code, "outputs": [{"type": "logs", "logs": "x = 1.0\n"}]}


def test_errors_in_the_code_are_outputs_not_failures(sdk: openai.OpenAI, assistant_id: str) -> None:
    thread_id, run_id = run_code(sdk, assistant_id, "1 / 0")
    logs = logs_of(code_call(sdk, thread_id, run_id))
    assert "ZeroDivisionError" in logs
    assert "\x1b[" not in logs  # tracebacks without terminal colours
    assert "ZeroDivisionError" in text_of(only_assistant_reply(sdk, thread_id, run_id))


def test_the_kernel_keeps_variables_across_runs_of_a_thread(sdk: openai.OpenAI, assistant_id: str) -> None:
    thread_id, _ = run_code(sdk, assistant_id, "counter = 41")
    _, run_id = run_code(sdk, assistant_id, "counter += 1\nprint(counter)", thread_id)
    assert logs_of(code_call(sdk, thread_id, run_id)) == "42\n"
    # Another thread has a kernel of its own.
    other_thread, other_run = run_code(sdk, assistant_id, "print('counter' in globals())")
    assert logs_of(code_call(sdk, other_thread, other_run)) == "False\n"


def test_a_csv_attached_to_the_thread_is_summed(sdk: openai.OpenAI, assistant_id: str) -> None:
    csv = sdk.files.create(file=("numbers.csv", b"n\n1\n2\n3\n4\n"), purpose="assistants")
    thread = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": code_message(
                    "import pandas as pd\nprint(pd.read_csv('/mnt/data/numbers.csv')['n'].sum())"
                ),
                "attachments": [{"file_id": csv.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    run = sdk.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    final = wait_for_run(sdk, thread.id, run.id, timeout=RUN_TIMEOUT)
    assert final.status == "completed", final.last_error
    assert logs_of(code_call(sdk, thread.id, run.id)) == "10\n"
    assert text_of(only_assistant_reply(sdk, thread.id, run.id)) == "10"


def test_a_plot_comes_back_as_an_image_file(sdk: openai.OpenAI, assistant_id: str) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
    thread_id, run_id = run_code(sdk, assistant_id, code)
    [image_id] = image_ids(code_call(sdk, thread_id, run_id))
    image = sdk.files.retrieve(image_id)
    assert image.purpose == "assistants_output"
    assert image.filename.endswith(".png")
    content = sdk.files.content(image_id).content
    assert content.startswith(PNG_SIGNATURE)
    assert image.bytes == len(content)

    reply = only_assistant_reply(sdk, thread_id, run_id)
    assert [part.type for part in reply.content] == ["image_file", "text"]
    assert reply.content[0].type == "image_file"
    assert reply.content[0].image_file.file_id == image_id
    assert text_part(reply).value == "The code ran without output.\nThe image is shown above."


def test_a_written_file_is_linked_with_a_file_path_annotation(sdk: openai.OpenAI, assistant_id: str) -> None:
    code = "with open('/mnt/data/squares.csv', 'w') as out:\n    out.write('n,sq\\n3,9\\n')\nprint('saved')"
    thread_id, run_id = run_code(sdk, assistant_id, code)
    assert logs_of(code_call(sdk, thread_id, run_id)) == "saved\n"
    text = text_part(only_assistant_reply(sdk, thread_id, run_id))
    assert text.value == "saved\nDownload it: sandbox:/mnt/data/squares.csv"
    [annotation] = text.annotations
    assert annotation.type == "file_path"
    assert annotation.text == "sandbox:/mnt/data/squares.csv"
    assert text.value[annotation.start_index : annotation.end_index] == annotation.text
    written = sdk.files.retrieve(annotation.file_path.file_id)
    assert (written.filename, written.purpose) == ("squares.csv", "assistants_output")
    assert sdk.files.content(written.id).content == b"n,sq\n3,9\n"


def test_streamed_code_run(sdk: openai.OpenAI, assistant_id: str) -> None:
    code = "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.show()\nprint(3 + 5)"
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": code_message(code)}])
    handler = RecordingHandler()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
        [message] = stream.get_final_messages()
        steps = stream.get_final_run_steps()

    assert [name for name in handler.names if name not in DELTAS] == SERVER_TOOL_THEN_ANSWER
    # The code arrives in step deltas as the model writes it; the outputs in one delta at the end.
    fragments = [
        fragment
        for event in handler.events
        if event.event == "thread.run.step.delta"
        and event.data.delta.step_details is not None
        and event.data.delta.step_details.type == "tool_calls"
        for fragment in event.data.delta.step_details.tool_calls or []
    ]
    assert all(fragment.type == "code_interpreter" and fragment.index == 0 for fragment in fragments)
    inputs = "".join(
        fragment.code_interpreter.input or ""
        for fragment in fragments
        if fragment.type == "code_interpreter" and fragment.code_interpreter is not None
    )
    assert inputs == code
    final_call = only_code_call(steps[0])
    assert logs_of(final_call) == "8\n"
    [image_id] = image_ids(final_call)
    assert [part.type for part in message.content] == ["image_file", "text"]
    assert message.content[0].type == "image_file"
    assert message.content[0].image_file.file_id == image_id
    assert text_part(message).value.startswith("8\n")


def test_without_a_sandbox_the_run_fails_saying_why(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_CODE_PYTHON="/nonexistent/python3")
    with make_sdk(server) as sdk:
        assistant = sdk.beta.assistants.create(model="gpt-4o", tools=CODE_INTERPRETER)
        thread_id = sdk.beta.threads.create(
            messages=[{"role": "user", "content": code_message("print(1)")}]
        ).id
        run = sdk.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
        final = wait_for_run(sdk, thread_id, run.id, timeout=RUN_TIMEOUT)
    assert final.status == "failed"
    assert final.last_error is not None
    assert final.last_error.code == "server_error"
    assert final.last_error.message.startswith("code_interpreter is unavailable on this server: ")


def test_code_cannot_reach_the_server_and_the_server_goes_on(
    server: Server, sdk: openai.OpenAI, assistant_id: str
) -> None:
    database = server.data_dir / "assistd.db"
    probe = (
        "import os, socket\n"
        f"print(os.path.exists({str(database)!r}))\n"
        "s = socket.socket()\n"
        "try:\n"
        "    s.connect(('127.0.0.1', 5432))\n"
        "    print('connected')\n"
        "except OSError as error:\n"
        "    print(type(error).__name__)"
    )
    thread_id, run_id = run_code(sdk, assistant_id, probe)
    assert logs_of(code_call(sdk, thread_id, run_id)) == "False\nConnectionRefusedError\n"

    # A fork bomb is stopped by the process limit; the run reports it and ends like any other.
    bomb = "import os\nfor _ in range(10000):\n    os.fork()"
    bombed_thread, bombed_run = run_code(sdk, assistant_id, bomb)
    assert "BlockingIOError" in logs_of(code_call(sdk, bombed_thread, bombed_run))
    # ... and the server goes on serving other threads.
    other_thread, other_run = run_code(sdk, assistant_id, "print(6 * 7)")
    assert logs_of(code_call(sdk, other_thread, other_run)) == "42\n"


def test_deleting_the_thread_ends_its_session_and_its_files(
    server: Server, sdk: openai.OpenAI, assistant_id: str
) -> None:
    thread_id, _ = run_code(sdk, assistant_id, "open('/mnt/data/secret.txt', 'w').write('x')")
    sessions = server.data_dir / "sandbox"

    def session_dirs() -> list[str]:
        return [path.name for path in sessions.glob("*/sessions/*") if path.name.startswith(thread_id)]

    assert len(session_dirs()) == 1
    assert sdk.beta.threads.delete(thread_id).deleted
    assert session_dirs() == []


class CallRecorder(RecordingHandler):
    """Records the tool call callbacks, as the SDK's handler makes them from the step deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, str]] = []  # (callback, index, logs so far)

    def on_tool_call_created(self, tool_call: Any) -> None:
        self.calls.append(("created", tool_call.index, ""))

    def on_tool_call_done(self, tool_call: Any) -> None:
        logs = "".join(o.logs or "" for o in tool_call.code_interpreter.outputs or [] if o.type == "logs")
        self.calls.append(("done", tool_call.index, logs))


def test_two_code_calls_in_one_turn_stream_one_after_the_other(sdk: openai.OpenAI, assistant_id: str) -> None:
    message = code_message("print('first')") + "\n" + code_message("print('second')")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": message}])
    handler = CallRecorder()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
        steps = stream.get_final_run_steps()
    # Each call is created once and done with its own outputs, in order (the SDK says "done" again for
    # the last call at the step's and the run's end).
    assert handler.calls[:4] == [
        ("created", 0, ""),
        ("done", 0, "first\n"),
        ("created", 1, ""),
        ("done", 1, "second\n"),
    ]
    assert set(handler.calls[4:]) <= {("done", 1, "second\n")}
    assert steps[0].step_details.type == "tool_calls"
    assert [logs_of(call) for call in steps[0].step_details.tool_calls] == ["first\n", "second\n"]  # type: ignore[arg-type]


def test_code_keeps_its_changes_to_the_files_it_was_given(sdk: openai.OpenAI, assistant_id: str) -> None:
    data = sdk.files.create(file=("data.csv", b"orig"), purpose="assistants")
    thread = sdk.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    run_code(sdk, assistant_id, "open('/mnt/data/data.csv', 'w').write('changed')", thread.id)
    _, run_id = run_code(sdk, assistant_id, "print(open('/mnt/data/data.csv').read())", thread.id)
    assert logs_of(code_call(sdk, thread.id, run_id)) == "changed\n"


def test_a_file_with_a_very_long_name_is_given_under_a_shorter_one(
    sdk: openai.OpenAI, assistant_id: str
) -> None:
    long_name = "n" * 300 + ".csv"
    data = sdk.files.create(file=(long_name, b"x"), purpose="assistants")
    thread = sdk.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    _, run_id = run_code(
        sdk, assistant_id, "import os\nprint([len(n) for n in os.listdir('/mnt/data')])", thread.id
    )
    assert logs_of(code_call(sdk, thread.id, run_id)) == "[255]\n"


def test_a_function_named_like_a_server_tool_beside_it_is_refused(sdk: openai.OpenAI) -> None:
    clash = {"type": "function", "function": {"name": "code_interpreter", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        sdk.beta.assistants.create(model="gpt-4o", tools=[*CODE_INTERPRETER, clash])  # type: ignore[list-item]
    assert info.value.body is not None
    assert info.value.body["param"] == "tools"  # type: ignore[index]
    # Without the tool, the name is a function like any other.
    assert sdk.beta.assistants.create(model="gpt-4o", tools=[clash]).tools[0].type == "function"  # type: ignore[list-item]
