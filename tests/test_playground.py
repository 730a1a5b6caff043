"""The web playground at ``/``: served without a key, and driven in headless Chromium against a live
server with the scripted model, as a person uses it: enter the key, make a vector store with a file, an
assistant with a function and file_search, then talk to it, answer its function call, and read a
citation. What the page shows is checked in the DOM, what it did through the API with the SDK.

Screenshots of each stage go to ``$ASSISTD_TEST_ARTIFACTS/playground`` (default ``test-artifacts/``
at the top of the repository). The browser is Debian's chromium (``make pytest`` installs it where it
can); without it the browser tests are skipped, the others still run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from tests.harness import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page
    from playwright.sync_api._generated import LocatorAssertions

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
STATIC = ROOT / "assistd" / "playground" / "static"
CHROMIUM = Path("/usr/bin/chromium")
# The machine may have no network at all: without these Chromium waits on connections of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ASSISTD_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "playground"
KEY = "sk-playground-5f2a9c"
TIMEOUT_MS = 15_000
ZORBLAX = b"Zorblax has three moons named Ix, Ul and Pra. Its capital is Quorn, on the northern sea.\n"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="chromium is not installed (Debian package chromium: make pytest installs it)",
)


@pytest.fixture(scope="module", autouse=True)
def _fresh_artifacts() -> None:
    """Only this run's screenshots in the artifacts directory."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that needs a key: the page must get the user's key to anything under /v1."""
    instance = Server(data_dir=tmp_path_factory.mktemp("playground"), env={"ASSISTD_API_KEYS": KEY})
    try:
        yield instance.start()
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def sdk(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser profile (nothing in localStorage); fails the test on any error the page's
    scripts raise, and leaves a screenshot of the page as it was when a test failed."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    failed_before = request.session.testsfailed
    try:
        yield tab
        if request.session.testsfailed > failed_before:
            shoot(tab, f"failed-{request.node.name}", full_page=True)
    finally:
        context.close()
    assert errors == []


def shoot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def expect(locator: Locator) -> LocatorAssertions:
    # Imported here: only the browser tests need Playwright.
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


# --- the page without a browser -----------------------------------------------------------------


def test_page_and_its_modules_are_served_without_a_key(server: Server) -> None:
    with httpx.Client(base_url=server.url) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert '<script type="module" src="playground/main.js">' in index.text
        # The API itself still wants the key.
        assert http.get("/v1/models").status_code == 401

        # Every module the page loads, following the imports from main.js.
        pending, seen = ["main.js"], set()
        while pending:
            name = pending.pop()
            seen.add(name)
            module = http.get(f"/playground/{name}")
            assert module.status_code == 200, name
            assert module.headers["content-type"] == "text/javascript; charset=utf-8"
            pending += [
                found for found in re.findall(r'from "\./([\w-]+\.js)"', module.text) if found not in seen
            ]
        assert {"api.js", "sse.js", "run-view.js", "thread-page.js"} <= seen
        assert http.get("/playground/app.css").headers["content-type"] == "text/css; charset=utf-8"

        # A second load is a 304: the ETag is the content's.
        again = http.get(
            "/playground/main.js", headers={"If-None-Match": http.get("/playground/main.js").headers["etag"]}
        )
        assert again.status_code == 304

        # Only the built files: no other name, no path, reaches the disk.
        for path in ("/playground/nope.js", "/playground/sources.sha256", "/playground/..%2F__init__.py"):
            missing = http.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["message"].startswith("Invalid URL")

        metrics = http.get("/metrics").text
    # Counted by route, never by file name.
    assert 'route="/",status="200"' in metrics
    assert 'route="/playground/{name}",status="200"' in metrics
    assert 'route="/playground/main.js"' not in metrics


def test_committed_build_matches_the_sources() -> None:
    """``make playground`` writes the fingerprint of the sources it built from: a source changed since
    means the committed build is stale."""
    recorded = {}
    for line in (STATIC / "sources.sha256").read_text().splitlines():
        digest, path = line.split("  ", 1)
        recorded[path] = digest
    sources = {f"src/{path.name}" for path in (WEB / "src").glob("*.ts")}
    assert sources <= recorded.keys(), "a new source is not in the build: run `make playground`"
    for path, digest in recorded.items():
        actual = hashlib.sha256((WEB / path).read_bytes()).hexdigest()
        assert actual == digest, f"web/{path} changed since the build: run `make playground`"
    modules = {path.name for path in STATIC.glob("*.js")}
    assert modules == {Path(path).with_suffix(".js").name for path in sources}


# --- the page in a browser ----------------------------------------------------------------------


def watch_assistant_text(page: Page) -> None:
    """Records the text of each rendering of an assistant message, as the page draws them."""
    page.evaluate(
        """() => {
            window.renderedTexts = [];
            new MutationObserver((records) => {
                for (const record of records) for (const node of record.addedNodes) {
                    if (node.nodeType === 1 && node.matches("article.message.assistant")) {
                        window.renderedTexts.push(node.querySelector(".text")?.textContent ?? "");
                    }
                }
            }).observe(document.querySelector(".log"), { childList: true, subtree: true });
        }"""
    )


def send(page: Page, text: str) -> Locator:
    """Sends a message from the composer; returns the run it started, once the page shows it."""
    runs = page.locator("section.run")
    before = runs.count()
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(runs).to_have_count(before + 1)
    return runs.last


@needs_chromium
def test_a_conversation_with_a_function_call_and_a_citation(
    page: Page, server: Server, sdk: openai.OpenAI
) -> None:
    page.goto(server.url)

    # The key: refused without one, accepted once typed.
    status = page.locator("#key-status")
    expect(status).to_have_text("This server needs an API key.")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Save key").click()
    expect(status).to_contain_text("Key accepted")
    assert page.evaluate("localStorage.getItem('assistd.playground.apiKey')") == KEY
    shoot(page, "01-assistants")

    # A vector store, and a file uploaded into it from the page.
    page.get_by_role("link", name="Files").click()
    page.get_by_label("New vector store name").fill("Zorblax facts")
    page.get_by_role("button", name="Create vector store").click()
    store = page.get_by_role("article", name="Vector store Zorblax facts")
    store.get_by_label("Upload files into Zorblax facts").set_input_files(
        {"name": "zorblax.txt", "mimeType": "text/plain", "buffer": ZORBLAX}
    )
    store.get_by_role("button", name="Upload and add").click()
    expect(store.locator("li[data-status=completed]")).to_contain_text("zorblax.txt")
    expect(store).to_contain_text("1 file(s): 1 ready")
    [vector_store] = [item for item in sdk.vector_stores.list() if item.name == "Zorblax facts"]
    assert vector_store.file_counts.completed == 1
    [stored] = list(sdk.vector_stores.files.list(vector_store.id))
    assert sdk.files.retrieve(stored.id).filename == "zorblax.txt"
    page.reload()  # the files table lists the new file
    expect(page.locator("table.files")).to_contain_text("zorblax.txt")
    shoot(page, "02-files-and-vector-stores", full_page=True)

    # An assistant with a function and file_search over that store.
    page.get_by_role("link", name="Assistants").click()
    page.get_by_role("link", name="New assistant").first.click()
    page.get_by_label("Name").fill("Weather and moons")
    page.get_by_label("Model").select_option("scripted")
    page.get_by_label("Instructions").fill("Answer in one sentence.")
    page.get_by_label("Temperature").fill("0.5")
    page.get_by_label("file_search: searches the vector store below").check()
    page.get_by_role("button", name="Add function").click()
    expect(page.get_by_label("Function 1 (JSON)")).to_have_value(re.compile(r'"name": "get_weather"'))
    page.get_by_label("Vector store for file_search").select_option(label="Zorblax facts (1 file)")
    shoot(page, "03-new-assistant", full_page=True)
    page.get_by_role("button", name="Create assistant").click()
    expect(page.locator("#editor-title")).to_have_text("Weather and moons")
    assistant_id = page.evaluate("location.hash").removeprefix("#/assistants/")
    assistant = sdk.beta.assistants.retrieve(assistant_id)
    assert (assistant.name, assistant.model, assistant.instructions, assistant.temperature) == (
        "Weather and moons",
        "scripted",
        "Answer in one sentence.",
        0.5,
    )
    assert [tool.type for tool in assistant.tools] == ["file_search", "function"]
    assert assistant.tools[1].function.name == "get_weather"  # type: ignore[union-attr]
    assert assistant.tool_resources is not None
    assert assistant.tool_resources.file_search is not None
    assert assistant.tool_resources.file_search.vector_store_ids == [vector_store.id]

    # A thread with it: a reply streamed in token by token.
    page.get_by_role("button", name="Chat in a new thread").click()
    expect(page.get_by_label("Assistant", exact=True)).to_have_value(assistant_id)
    thread_id = page.evaluate("location.hash").removeprefix("#/threads/")
    watch_assistant_text(page)
    run = send(page, "Hello there")
    expect(run.locator("article.message.assistant .text")).to_have_text("You said: Hello there")
    expect(run.locator(".status")).to_have_text("completed")
    rendered = [text for text in page.evaluate("window.renderedTexts") if text]
    assert len(set(rendered)) >= 4, rendered  # one rendering per token, not the answer at once
    assert all("You said: Hello there".startswith(text) for text in rendered), rendered
    shoot(page, "04-streamed-reply")

    # A function call: the form takes its output, the run goes on with it.
    run = send(page, 'Let me check.\n/call get_weather {"city": "Paris"}')
    output = page.get_by_label("Output of get_weather")
    expect(output).to_be_focused()
    expect(run.locator(".status")).to_have_text("requires action")
    expect(run.locator("details.tool-call.function")).to_contain_text('"city": "Paris"')
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    shoot(page, "05-function-call")
    output.fill("18 C and sunny")
    page.get_by_role("button", name="Submit output").click()
    expect(run.locator("article.message.assistant .text").last).to_have_text(
        "get_weather returned 18 C and sunny"
    )
    expect(run.locator(".status")).to_have_text("completed")
    expect(run.locator("details.tool-call.function .output")).to_have_text("18 C and sunny")
    run_id = sdk.beta.threads.runs.list(thread_id, limit=1).data[0].id
    steps = sdk.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data
    [call] = [call for step in steps if step.type == "tool_calls" for call in step.step_details.tool_calls]  # type: ignore[union-attr]
    assert (call.function.name, call.function.output) == ("get_weather", "18 C and sunny")  # type: ignore[union-attr]
    shoot(page, "06-function-output")

    # file_search: the results in the step, the citation in the answer.
    run = send(page, "/search moons of Zorblax")
    answer = run.locator("article.message.assistant")
    expect(answer.locator(".text")).to_contain_text('The files say: "Zorblax has three moons')
    citation = answer.get_by_role("link", name="Source 1: zorblax.txt")
    expect(citation).to_have_text("[1]")
    expect(answer.get_by_role("list", name="Sources")).to_contain_text("zorblax.txt")
    results = run.get_by_role("list", name="Search results")
    expect(results).to_contain_text("zorblax.txt")
    expect(results.locator("blockquote")).to_contain_text("Quorn, on the northern sea")
    citation.click()
    expect(answer.locator("li.source")).to_be_focused()
    assert page.evaluate("location.hash") == f"#/threads/{thread_id}"  # still on the thread
    [message] = sdk.beta.threads.messages.list(thread_id, limit=1).data
    annotation = message.content[0].text.annotations[0]  # type: ignore[union-attr]
    assert annotation.type == "file_citation"
    assert annotation.file_citation.file_id == stored.id  # type: ignore[union-attr]
    shoot(page, "07-citation")

    # Opened again later (a reload): the whole conversation comes back from the API.
    page.reload()
    expect(page.locator("section.run")).to_have_count(3)
    expect(page.locator("article.message.user")).to_have_count(3)
    expect(page.locator(".source-name").first).to_have_text("zorblax.txt")
    shoot(page, "08-thread", full_page=True)

    # A phone's width: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(page, "09-phone-end-of-thread")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "09-phone-top")
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.set_viewport_size({"width": 1280, "height": 860})

    # Threads are listed in this browser, and deleted from the page.
    page.get_by_role("link", name="Threads").click()
    listed = page.locator(".thread-item", has_text="Hello there")
    expect(listed).to_contain_text(thread_id)
    page.once("dialog", lambda dialog: dialog.accept())
    listed.get_by_role("button", name="Delete thread Hello there").click()
    expect(page.locator(".thread-item")).to_have_count(0)
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.retrieve(thread_id)


@needs_chromium
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_code_interpreter_with_an_attached_file(page: Page, server: Server, sdk: openai.OpenAI) -> None:
    """A thread made by a program, opened by its id; a file attached from the page; the code the model
    ran, its output, its figure, and the file it wrote, downloaded through the answer's link."""
    assistant = sdk.beta.assistants.create(
        model="scripted", name="Plotter", tools=[{"type": "code_interpreter"}]
    )
    thread = sdk.beta.threads.create()
    page.goto(server.url)
    page.get_by_label("API key").fill(KEY)
    page.get_by_label("API key").press("Enter")
    page.get_by_role("link", name="Threads").click()
    page.get_by_label("Thread id").fill(thread.id)
    page.get_by_role("button", name="Open").click()
    page.get_by_label("Assistant", exact=True).select_option(assistant.id)
    page.get_by_label("Attach files").set_input_files(
        {"name": "numbers.csv", "mimeType": "text/csv", "buffer": b"n\n1\n4\n9\n"}
    )
    code = "\n".join(
        [
            "import pandas as pd",
            "import matplotlib.pyplot as plt",
            'frame = pd.read_csv("/mnt/data/numbers.csv")',
            'frame.plot(y="n")',
            "plt.show()",
            '(frame * 2).to_csv("/mnt/data/doubled.csv", index=False)',
            'print(frame["n"].sum())',
        ]
    )
    run = send(page, f"/code\n```python\n{code}\n```")
    expect(run.locator(".status")).to_have_text("completed", timeout=30_000)
    [attached] = sdk.beta.threads.messages.list(thread.id, order="asc").data[0].attachments or []
    assert attached.file_id is not None
    assert sdk.files.retrieve(attached.file_id).filename == "numbers.csv"
    expect(page.get_by_role("list", name="Attachments")).to_contain_text(
        f"{attached.file_id} for code_interpreter"
    )

    call = run.locator("details.tool-call.code_interpreter")
    expect(call.locator("pre.code")).to_have_text(code)
    expect(call.locator("pre.output")).to_have_text("14")
    image = call.get_by_role("img")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "(image) => image.complete && image.naturalWidth > 100", arg=image.element_handle()
    )
    # The answer shows the same figure, and links the file the code wrote.
    answer = run.locator("article.message.assistant")
    expect(answer.get_by_role("img")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(answer.locator(".text")).to_have_text("14\nThe image is shown above.\nDownload it: doubled.csv")
    with page.expect_download() as download:
        answer.get_by_role("button", name="doubled.csv").click()
    assert download.value.suggested_filename == "doubled.csv"
    assert Path(download.value.path()).read_text() == "n\n2\n8\n18\n"
    call.evaluate("(element) => element.scrollIntoView({ block: 'start' })")
    shoot(page, "10-code-interpreter")
