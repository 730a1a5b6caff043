// #/threads/{id}: the conversation, the assistant it talks to, and the box to write in.

import * as api from "./api.js";
import { field, h } from "./dom.js";
import { knownThread, rememberThread } from "./local-threads.js";
import * as notify from "./notify.js";
import { renderMessage } from "./render-message.js";
import { go, type Show } from "./router.js";
import { INCLUDE, RunView, words } from "./run-view.js";
import { deleteThread } from "./threads-page.js";
import type { Assistant, Attachment, Message, Run, RunStep, Thread } from "./types.js";

const WAITING = new Set(["queued", "in_progress", "cancelling", "requires_action"]);

export async function threadPage(show: Show, threadId: string): Promise<void> {
  let thread: Thread;
  try {
    thread = await api.get<Thread>(`threads/${encodeURIComponent(threadId)}`);
  } catch (problem) {
    if (problem instanceof api.ApiError && problem.status === 404) return missingThread(show, threadId);
    throw problem;
  }
  const [messages, runs, assistants] = await Promise.all([
    api.listAll<Message>(`threads/${thread.id}/messages`),
    api.listAll<Run>(`threads/${thread.id}/runs`),
    api.listAll<Assistant>("assistants", { order: "desc" }),
  ]);
  const steps = await Promise.all(
    runs.map((run) => api.listAll<RunStep>(`threads/${thread.id}/runs/${run.id}/steps`, INCLUDE)),
  );
  const known = knownThread(thread.id) ?? rememberThread(thread.id, { createdAt: thread.created_at });

  const log = h("div", { class: "log", role: "log", "aria-label": "Conversation" });
  const composer = new Composer(
    thread.id,
    assistants,
    known.assistantId ?? runs[runs.length - 1]?.assistant_id ?? null,
    log,
  );
  const settled = (run: Run) => composer.runSettled(run);

  // Each run goes where its first message is; the messages of a run are shown inside it, with its steps.
  const runViews = new Map(
    runs.map((run, index) => [
      run.id,
      RunView.fromHistory(
        run,
        steps[index] ?? [],
        messages.filter((message) => message.run_id === run.id),
        settled,
      ),
    ]),
  );
  const placed = new Set<string>();
  const place = (view: RunView) => {
    placed.add(view.id);
    log.append(view.element);
  };
  for (const message of messages) {
    for (const run of runs) {
      // Runs that wrote no message (a function call waiting, a failure) go by time.
      if (
        !placed.has(run.id) &&
        run.created_at < message.created_at &&
        !messages.some((m) => m.run_id === run.id)
      ) {
        place(runViews.get(run.id) as RunView);
      }
    }
    const view = message.run_id ? runViews.get(message.run_id) : undefined;
    if (view) {
      if (!placed.has(view.id)) place(view);
    } else {
      log.append(renderMessage(message));
    }
  }
  for (const view of runViews.values()) if (!placed.has(view.id)) place(view);
  const last = runs[runs.length - 1];
  if (last && WAITING.has(last.status)) composer.runSettled(last);

  const remove = h(
    "button",
    {
      type: "button",
      class: "danger small",
      onclick: () => void deleteThread(thread.id, () => go("#/threads")),
    },
    "Delete thread",
  );
  const shown = show(
    h(
      "section",
      { class: "thread-page", "aria-labelledby": "thread-title" },
      h(
        "header",
        { class: "page-head" },
        h("h2", { id: "thread-title" }, "Thread ", h("code", {}, thread.id)),
        h("div", { class: "thread-tools" }, composer.assistantField, remove),
      ),
      messages.length || runs.length
        ? null
        : h("p", { class: "hint empty" }, "No messages yet. Write the first one below."),
      log,
      composer.element,
    ),
  );
  if (!shown) return;
  followLog(log);
  composer.focus();
  window.scrollTo({ top: document.body.scrollHeight });
}

function missingThread(show: Show, threadId: string): void {
  show(
    h(
      "section",
      { class: "page" },
      h("h2", {}, "Thread not found"),
      h("p", {}, `No thread ${threadId} is visible with this API key.`),
      h("a", { class: "button", href: "#/threads" }, "Back to the threads"),
    ),
  );
}

/** Keeps the newest part of the conversation in view while it grows, unless the user scrolled up. */
function followLog(log: HTMLElement): void {
  let atBottom = true;
  // Once another page is shown, neither may act on it.
  const gone = () => {
    if (log.isConnected) return false;
    observer.disconnect();
    window.removeEventListener("scroll", measure);
    return true;
  };
  const observer = new MutationObserver(() => {
    if (!gone() && atBottom) window.scrollTo({ top: document.body.scrollHeight });
  });
  const measure = () => {
    if (!gone()) atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  };
  window.addEventListener("scroll", measure, { passive: true });
  observer.observe(log, { childList: true, subtree: true, characterData: true });
}

class Composer {
  readonly element: HTMLFormElement;
  readonly assistantField: HTMLElement;
  private readonly assistant: HTMLSelectElement;
  private readonly text = h("textarea", {
    rows: 3,
    placeholder: "Write a message. Enter sends, Shift+Enter starts a new line.",
    enterkeyhint: "send",
  });
  private readonly files = h("input", { type: "file", multiple: true });
  private readonly send = h("button", { type: "submit" }, "Send");
  private readonly state = h("p", { class: "hint composer-state", role: "status" });
  private busy = false;

  constructor(
    private readonly threadId: string,
    private readonly assistants: Assistant[],
    chosen: string | null,
    private readonly log: HTMLElement,
  ) {
    this.assistant = h(
      "select",
      {
        onchange: () => rememberThread(threadId, { assistantId: this.assistant.value || null }),
      },
      ...(assistants.length ? [] : [h("option", { value: "" }, "(no assistants yet)")]),
      ...assistants.map((assistant) =>
        h(
          "option",
          { value: assistant.id, selected: assistant.id === chosen },
          `${assistant.name || "(unnamed)"} · ${assistant.model}`,
        ),
      ),
    );
    this.assistantField = field("Assistant", this.assistant);
    this.text.addEventListener("keydown", (event) => {
      // Enter sends (Ctrl/Cmd+Enter too); Shift+Enter is a new line; nothing while an IME composes.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.element.requestSubmit();
      }
    });
    this.element = h(
      "form",
      { class: "composer", "aria-label": "New message" },
      // The placeholder says what the box is for; the label is for screen readers.
      h("label", { class: "visually-hidden", for: (this.text.id = "composer-text") }, "Message"),
      this.text,
      h("div", { class: "composer-row" }, field("Attach files", this.files), this.send),
      this.state,
    );
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
  }

  focus(): void {
    this.text.focus();
  }

  /** The run stopped moving: the thread takes messages again, or waits for the function outputs. */
  runSettled(run: Run): void {
    if (run.status === "requires_action") {
      this.setBusy(true, "Waiting for the function outputs above (or cancel the run).");
    } else if (WAITING.has(run.status)) {
      this.setBusy(true, `Run ${words(run.status)}…`);
    } else {
      this.setBusy(false, "");
      this.focus();
    }
  }

  private setBusy(busy: boolean, state: string): void {
    this.busy = busy;
    this.send.disabled = busy;
    this.state.textContent = state;
  }

  private async submit(): Promise<void> {
    const content = this.text.value.trim();
    const chosen = [...(this.files.files ?? [])];
    if (this.busy || (!content && chosen.length === 0)) return;
    const assistant = this.assistants.find((item) => item.id === this.assistant.value);
    if (!assistant) {
      notify.error(new Error("Choose an assistant first (make one on the Assistants page)."));
      return;
    }
    this.setBusy(true, "Sending…");
    const sent = await notify.attempt(async () => {
      const attachments = await this.upload(chosen, assistant);
      const message = await api.post<Message>(`threads/${this.threadId}/messages`, {
        role: "user",
        content: content || "(see the attached files)",
        ...(attachments.length ? { attachments } : {}),
      });
      this.log.parentElement?.querySelector(".empty")?.remove();
      this.log.append(renderMessage(message));
      this.text.value = "";
      this.files.value = "";
      const known = knownThread(this.threadId);
      rememberThread(this.threadId, {
        assistantId: assistant.id,
        title: known?.title || content.slice(0, 80) || "(files)",
      });
      return message;
    });
    if (!sent) {
      this.setBusy(false, "");
      return;
    }
    this.setBusy(true, "Running…");
    const view = await notify.attempt(() =>
      RunView.start(
        this.threadId,
        { assistant_id: assistant.id },
        (started) => this.log.append(started.element),
        (run) => this.runSettled(run),
      ),
    );
    // No run to wait for: the request failed, or its stream ended before the run was made.
    if (!view) this.setBusy(false, "");
  }

  private async upload(files: File[], assistant: Assistant): Promise<Attachment[]> {
    if (files.length === 0) return [];
    const tools = assistant.tools
      .filter((tool) => tool.type === "code_interpreter" || tool.type === "file_search")
      .map((tool) => ({ type: tool.type as "code_interpreter" | "file_search" }));
    if (tools.length === 0) {
      throw new Error(
        "This assistant has neither code_interpreter nor file_search: it could not read attached files.",
      );
    }
    const attachments: Attachment[] = [];
    for (const file of files) {
      this.state.textContent = `Uploading ${file.name}…`;
      const uploaded = await api.upload(file, "assistants");
      attachments.push({ file_id: uploaded.id, tools });
    }
    return attachments;
  }
}
