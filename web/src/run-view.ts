// One run in the conversation: its status, its steps in order (tool calls, and the messages it wrote),
// updated event by event while it streams, and the form for function outputs when it waits for them.

import * as api from "./api.js";
import { mergeDelta } from "./delta.js";
import { field, h, replace } from "./dom.js";
import * as notify from "./notify.js";
import { renderMessage } from "./render-message.js";
import { renderToolCalls } from "./render-step.js";
import type { ServerEvent } from "./sse.js";
import type { Message, Run, RunStep } from "./types.js";

const ACTIVE = new Set(["queued", "in_progress", "cancelling"]);
// Asks for the text of file_search results too, so that the steps show what the model read.
export const INCLUDE = { "include[]": "step_details.tool_calls[*].file_search.results[*].content" };
const POLL_MS = 1000;

/** "requires_action" as it is read: "requires action". */
export function words(status: string): string {
  return status.replaceAll("_", " ");
}

export function isActive(run: Run): boolean {
  return ACTIVE.has(run.status);
}

function streamError(event: ServerEvent): string {
  try {
    return (JSON.parse(event.data) as { error?: { message?: string } }).error?.message ?? event.data;
  } catch {
    return event.data || "The stream failed.";
  }
}

// The fuller of two readings of a step's tool calls: the created and in_progress events carry none, the
// deltas add them one by one, the completed event has them all.
function fuller(known: RunStep["step_details"], latest: RunStep["step_details"]): RunStep["step_details"] {
  const count = (details: RunStep["step_details"]) =>
    details.type === "tool_calls" ? (details.tool_calls?.length ?? 0) : 1;
  return count(latest) >= count(known) ? latest : known;
}

export class RunView {
  readonly element: HTMLElement;
  private run: Run;
  private readonly steps = new Map<string, RunStep>();
  private readonly messages = new Map<string, Message>();
  private readonly stepItems = new Map<string, HTMLLIElement>();
  private readonly status = h("span", { class: "status", role: "status" });
  private readonly usage = h("span", { class: "usage" });
  private readonly cancel = h("button", { type: "button", class: "secondary small" }, "Cancel run");
  private readonly list = h("ol", { class: "steps", "aria-label": "Run steps" });
  private readonly extra = h("div", { class: "run-extra" });
  private streaming = false;
  private following = false;

  /** ``settled`` is called each time the run stops moving: it ended, or it waits for tool outputs. */
  constructor(
    run: Run,
    private readonly settled: (run: Run) => void = () => undefined,
  ) {
    this.run = run;
    this.cancel.addEventListener("click", () => void this.cancelRun());
    this.element = h(
      "section",
      { class: "run", "data-run-id": run.id, "aria-label": `Run ${run.id}` },
      h(
        "header",
        { class: "run-head" },
        h("span", { class: "run-title" }, "Run ", h("code", {}, run.id)),
        this.status,
        this.usage,
        this.cancel,
      ),
      this.list,
      this.extra,
    );
    this.renderRun();
  }

  get id(): string {
    return this.run.id;
  }

  /** A run read back from the API (a thread opened later): its steps and messages as they are now. */
  static fromHistory(run: Run, steps: RunStep[], messages: Message[], settled?: (run: Run) => void): RunView {
    const view = new RunView(run, settled);
    for (const message of messages) view.messages.set(message.id, message);
    for (const step of steps) view.putStep(step);
    if (isActive(run)) void view.follow();
    return view;
  }

  /** Starts a run on ``threadId`` and shows it as it streams. */
  static async start(
    threadId: string,
    body: Record<string, unknown>,
    place: (view: RunView) => void,
    settled: (run: Run) => void,
  ): Promise<RunView | null> {
    const events = api.stream(`threads/${threadId}/runs`, body, INCLUDE);
    let view: RunView | null = null;
    try {
      for await (const event of events) {
        if (!view) {
          if (event.event === "error") throw new Error(streamError(event));
          if (event.event !== "thread.run.created") continue;
          view = new RunView(JSON.parse(event.data) as Run, settled);
          view.streaming = true;
          place(view);
        }
        view.apply(event);
      }
    } finally {
      view?.streamEnded();
    }
    return view;
  }

  private async consume(events: AsyncGenerator<ServerEvent>): Promise<void> {
    this.streaming = true;
    try {
      for await (const event of events) this.apply(event);
    } finally {
      this.streamEnded();
    }
  }

  private streamEnded(): void {
    this.streaming = false;
    // A stream that broke off leaves the run going on the server: follow it by polling instead.
    if (isActive(this.run)) void this.follow();
    else this.settled(this.run);
  }

  apply(event: ServerEvent): void {
    const name = event.event;
    if (name === "done") return;
    if (name === "error") {
      notify.error(new Error(streamError(event)));
      return;
    }
    const data = JSON.parse(event.data) as Record<string, unknown>;
    if (name === "thread.run.step.delta") {
      const step = this.steps.get(String(data.id));
      if (step) {
        mergeDelta(step as unknown as Record<string, unknown>, data.delta as Record<string, unknown>);
        this.renderStep(step);
      }
    } else if (name.startsWith("thread.run.step.")) {
      const step = data as unknown as RunStep;
      const known = this.steps.get(step.id);
      this.putStep(known ? { ...step, step_details: fuller(known.step_details, step.step_details) } : step);
    } else if (name === "thread.message.delta") {
      const message = this.messages.get(String(data.id));
      if (message) {
        mergeDelta(message as unknown as Record<string, unknown>, data.delta as Record<string, unknown>);
        this.renderMessageOf(message.id);
      }
    } else if (name.startsWith("thread.message.")) {
      const message = data as unknown as Message;
      const known = this.messages.get(message.id);
      this.messages.set(
        message.id,
        known && message.content.length === 0 ? { ...message, content: known.content } : message,
      );
      this.renderMessageOf(message.id);
    } else if (name.startsWith("thread.run.")) {
      this.run = data as unknown as Run;
      this.renderRun();
    }
  }

  private putStep(step: RunStep): void {
    this.steps.set(step.id, step);
    this.renderStep(step);
  }

  private renderStep(step: RunStep): void {
    let item = this.stepItems.get(step.id);
    if (!item) {
      item = h("li", { class: "step" });
      this.stepItems.set(step.id, item);
      this.list.append(item);
    }
    item.dataset.stepId = step.id;
    item.dataset.type = step.type;
    item.dataset.status = step.status;
    const kind = step.type === "tool_calls" ? "tool calls" : "message";
    const meta = h(
      "p",
      { class: "step-meta" },
      `Step ${this.stepNumber(step.id)} · ${kind} · ${words(step.status)}`,
    );
    const error = step.last_error
      ? h("p", { class: "run-error" }, `${step.last_error.code}: ${step.last_error.message}`)
      : null;
    if (step.step_details.type === "message_creation") {
      const message = this.messages.get(step.step_details.message_creation.message_id);
      replace(item, meta, message ? renderMessage(message) : null, error);
    } else {
      replace(item, meta, ...renderToolCalls(step), error);
    }
  }

  private stepNumber(id: string): number {
    return [...this.steps.keys()].indexOf(id) + 1;
  }

  private renderMessageOf(messageId: string): void {
    for (const step of this.steps.values()) {
      if (
        step.step_details.type === "message_creation" &&
        step.step_details.message_creation.message_id === messageId
      ) {
        this.renderStep(step);
        return;
      }
    }
  }

  private renderRun(): void {
    const run = this.run;
    this.element.dataset.status = run.status;
    this.status.dataset.status = run.status;
    this.status.textContent = words(run.status);
    this.usage.textContent = run.usage ? `${run.usage.total_tokens} tokens` : "";
    this.cancel.hidden = !isActive(run) && run.status !== "requires_action";
    const parts: (HTMLElement | null)[] = [];
    if (run.last_error) {
      parts.push(
        h("p", { class: "run-error", role: "alert" }, `${run.last_error.code}: ${run.last_error.message}`),
      );
    }
    if (run.incomplete_details) {
      parts.push(h("p", { class: "run-error" }, `Incomplete: ${run.incomplete_details.reason}`));
    }
    if (run.status === "requires_action" && run.required_action) parts.push(this.outputsForm(run));
    replace(this.extra, ...parts);
  }

  private outputsForm(run: Run): HTMLFormElement {
    const calls = run.required_action?.submit_tool_outputs.tool_calls ?? [];
    const boxes = calls.map((call) =>
      h("textarea", { name: call.id, rows: 2, placeholder: "What the function returned" }),
    );
    const submit = h("button", { type: "submit" }, calls.length > 1 ? "Submit outputs" : "Submit output");
    const form = h(
      "form",
      { class: "tool-outputs", "aria-label": "Function outputs" },
      h("h4", {}, calls.length > 1 ? "The assistant called functions" : "The assistant called a function"),
      ...calls.map((call, index) =>
        h(
          "fieldset",
          {},
          h("legend", {}, h("code", {}, `${call.function.name}(${call.function.arguments})`)),
          field(`Output of ${call.function.name}`, boxes[index] as HTMLTextAreaElement),
        ),
      ),
      h("div", { class: "actions" }, submit),
    );
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit.disabled = true;
      const outputs = calls.map((call, index) => ({
        tool_call_id: call.id,
        output: boxes[index]?.value ?? "",
      }));
      void this.submitOutputs(outputs).finally(() => (submit.disabled = false));
    });
    // Where the keyboard user wants to be next.
    queueMicrotask(() => boxes[0]?.focus());
    return form;
  }

  private async submitOutputs(outputs: { tool_call_id: string; output: string }[]): Promise<void> {
    await notify.attempt(() =>
      this.consume(
        api.stream(
          `threads/${this.run.thread_id}/runs/${this.run.id}/submit_tool_outputs`,
          { tool_outputs: outputs },
          INCLUDE,
        ),
      ),
    );
  }

  private async cancelRun(): Promise<void> {
    const run = await notify.attempt(() =>
      api.post<Run>(`threads/${this.run.thread_id}/runs/${this.run.id}/cancel`),
    );
    // With a stream open, its events show the cancellation; without one, this answer does.
    if (run && !this.streaming) {
      this.run = run;
      this.renderRun();
      if (isActive(run)) void this.follow();
      else this.settled(run);
    }
  }

  /** Polls a run that is going on without a stream of ours, until it stops moving. */
  private async follow(): Promise<void> {
    if (this.following) return;
    this.following = true;
    try {
      while (isActive(this.run)) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        // A stream took over, or the user went to another page.
        if (this.streaming || !this.element.isConnected) return;
        const run = await notify.attempt(() =>
          api.get<Run>(`threads/${this.run.thread_id}/runs/${this.run.id}`),
        );
        if (!run) return;
        this.run = run;
        await notify.attempt(() => this.reload());
        this.renderRun();
      }
    } finally {
      this.following = false;
    }
    this.settled(this.run);
  }

  private async reload(): Promise<void> {
    const { thread_id: threadId, id } = this.run;
    const [steps, messages] = await Promise.all([
      api.listAll<RunStep>(`threads/${threadId}/runs/${id}/steps`, INCLUDE),
      api.listAll<Message>(`threads/${threadId}/messages`, { run_id: id }),
    ]);
    for (const message of messages) this.messages.set(message.id, message);
    for (const step of steps) this.putStep(step);
  }
}
