// One run in the conversation: its status, its steps in order (tool calls, and the messages it wrote),
// updated event by event while it streams, and the form for function outputs when it waits for them.
import * as api from "./api.js";
import { mergeDelta } from "./delta.js";
import { field, h, replace } from "./dom.js";
import * as notify from "./notify.js";
import { renderMessage } from "./render-message.js";
import { renderToolCalls } from "./render-step.js";
const ACTIVE = new Set(["queued", "in_progress", "cancelling"]);
// Asks for the text of file_search results too, so that the steps show what the model read.
export const INCLUDE = { "include[]": "step_details.tool_calls[*].file_search.results[*].content" };
const POLL_MS = 1000;
/** "requires_action" as it is read: "requires action". */
export function words(status) {
    return status.replaceAll("_", " ");
}
export function isActive(run) {
    return ACTIVE.has(run.status);
}
function streamError(event) {
    try {
        return JSON.parse(event.data).error?.message ?? event.data;
    }
    catch {
        return event.data || "The stream failed.";
    }
}
// The fuller of two readings of a step's tool calls: the created and in_progress events carry none, the
// deltas add them one by one, the completed event has them all.
function fuller(known, latest) {
    const count = (details) => details.type === "tool_calls" ? (details.tool_calls?.length ?? 0) : 1;
    return count(latest) >= count(known) ? latest : known;
}
export class RunView {
    settled;
    element;
    run;
    steps = new Map();
    messages = new Map();
    stepItems = new Map();
    status = h("span", { class: "status", role: "status" });
    usage = h("span", { class: "usage" });
    cancel = h("button", { type: "button", class: "secondary small" }, "Cancel run");
    list = h("ol", { class: "steps", "aria-label": "Run steps" });
    extra = h("div", { class: "run-extra" });
    streaming = false;
    following = false;
    /** ``settled`` is called each time the run stops moving: it ended, or it waits for tool outputs. */
    constructor(run, settled = () => undefined) {
        this.settled = settled;
        this.run = run;
        this.cancel.addEventListener("click", () => void this.cancelRun());
        this.element = h("section", { class: "run", "data-run-id": run.id, "aria-label": `Run ${run.id}` }, h("header", { class: "run-head" }, h("span", { class: "run-title" }, "Run ", h("code", {}, run.id)), this.status, this.usage, this.cancel), this.list, this.extra);
        this.renderRun();
    }
    get id() {
        return this.run.id;
    }
    /** A run read back from the API (a thread opened later): its steps and messages as they are now. */
    static fromHistory(run, steps, messages, settled) {
        const view = new RunView(run, settled);
        for (const message of messages)
            view.messages.set(message.id, message);
        for (const step of steps)
            view.putStep(step);
        if (isActive(run))
            void view.follow();
        return view;
    }
    /** Starts a run on ``threadId`` and shows it as it streams. */
    static async start(threadId, body, place, settled) {
        const events = api.stream(`threads/${threadId}/runs`, body, INCLUDE);
        let view = null;
        try {
            for await (const event of events) {
                if (!view) {
                    if (event.event === "error")
                        throw new Error(streamError(event));
                    if (event.event !== "thread.run.created")
                        continue;
                    view = new RunView(JSON.parse(event.data), settled);
                    view.streaming = true;
                    place(view);
                }
                view.apply(event);
            }
        }
        finally {
            view?.streamEnded();
        }
        return view;
    }
    async consume(events) {
        this.streaming = true;
        try {
            for await (const event of events)
                this.apply(event);
        }
        finally {
            this.streamEnded();
        }
    }
    streamEnded() {
        this.streaming = false;
        // A stream that broke off leaves the run going on the server: follow it by polling instead.
        if (isActive(this.run))
            void this.follow();
        else
            this.settled(this.run);
    }
    apply(event) {
        const name = event.event;
        if (name === "done")
            return;
        if (name === "error") {
            notify.error(new Error(streamError(event)));
            return;
        }
        const data = JSON.parse(event.data);
        if (name === "thread.run.step.delta") {
            const step = this.steps.get(String(data.id));
            if (step) {
                mergeDelta(step, data.delta);
                this.renderStep(step);
            }
        }
        else if (name.startsWith("thread.run.step.")) {
            const step = data;
            const known = this.steps.get(step.id);
            this.putStep(known ? { ...step, step_details: fuller(known.step_details, step.step_details) } : step);
        }
        else if (name === "thread.message.delta") {
            const message = this.messages.get(String(data.id));
            if (message) {
                mergeDelta(message, data.delta);
                this.renderMessageOf(message.id);
            }
        }
        else if (name.startsWith("thread.message.")) {
            const message = data;
            const known = this.messages.get(message.id);
            this.messages.set(message.id, known && message.content.length === 0 ? { ...message, content: known.content } : message);
            this.renderMessageOf(message.id);
        }
        else if (name.startsWith("thread.run.")) {
            this.run = data;
            this.renderRun();
        }
    }
    putStep(step) {
        this.steps.set(step.id, step);
        this.renderStep(step);
    }
    renderStep(step) {
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
        const meta = h("p", { class: "step-meta" }, `Step ${this.stepNumber(step.id)} · ${kind} · ${words(step.status)}`);
        const error = step.last_error
            ? h("p", { class: "run-error" }, `${step.last_error.code}: ${step.last_error.message}`)
            : null;
        if (step.step_details.type === "message_creation") {
            const message = this.messages.get(step.step_details.message_creation.message_id);
            replace(item, meta, message ? renderMessage(message) : null, error);
        }
        else {
            replace(item, meta, ...renderToolCalls(step), error);
        }
    }
    stepNumber(id) {
        return [...this.steps.keys()].indexOf(id) + 1;
    }
    renderMessageOf(messageId) {
        for (const step of this.steps.values()) {
            if (step.step_details.type === "message_creation" &&
                step.step_details.message_creation.message_id === messageId) {
                this.renderStep(step);
                return;
            }
        }
    }
    renderRun() {
        const run = this.run;
        this.element.dataset.status = run.status;
        this.status.dataset.status = run.status;
        this.status.textContent = words(run.status);
        this.usage.textContent = run.usage ? `${run.usage.total_tokens} tokens` : "";
        this.cancel.hidden = !isActive(run) && run.status !== "requires_action";
        const parts = [];
        if (run.last_error) {
            parts.push(h("p", { class: "run-error", role: "alert" }, `${run.last_error.code}: ${run.last_error.message}`));
        }
        if (run.incomplete_details) {
            parts.push(h("p", { class: "run-error" }, `Incomplete: ${run.incomplete_details.reason}`));
        }
        if (run.status === "requires_action" && run.required_action)
            parts.push(this.outputsForm(run));
        replace(this.extra, ...parts);
    }
    outputsForm(run) {
        const calls = run.required_action?.submit_tool_outputs.tool_calls ?? [];
        const boxes = calls.map((call) => h("textarea", { name: call.id, rows: 2, placeholder: "What the function returned" }));
        const submit = h("button", { type: "submit" }, calls.length > 1 ? "Submit outputs" : "Submit output");
        const form = h("form", { class: "tool-outputs", "aria-label": "Function outputs" }, h("h4", {}, calls.length > 1 ? "The assistant called functions" : "The assistant called a function"), ...calls.map((call, index) => h("fieldset", {}, h("legend", {}, h("code", {}, `${call.function.name}(${call.function.arguments})`)), field(`Output of ${call.function.name}`, boxes[index]))), h("div", { class: "actions" }, submit));
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
    async submitOutputs(outputs) {
        await notify.attempt(() => this.consume(api.stream(`threads/${this.run.thread_id}/runs/${this.run.id}/submit_tool_outputs`, { tool_outputs: outputs }, INCLUDE)));
    }
    async cancelRun() {
        const run = await notify.attempt(() => api.post(`threads/${this.run.thread_id}/runs/${this.run.id}/cancel`));
        // With a stream open, its events show the cancellation; without one, this answer does.
        if (run && !this.streaming) {
            this.run = run;
            this.renderRun();
            if (isActive(run))
                void this.follow();
            else
                this.settled(run);
        }
    }
    /** Polls a run that is going on without a stream of ours, until it stops moving. */
    async follow() {
        if (this.following)
            return;
        this.following = true;
        try {
            while (isActive(this.run)) {
                await new Promise((resolve) => setTimeout(resolve, POLL_MS));
                // A stream took over, or the user went to another page.
                if (this.streaming || !this.element.isConnected)
                    return;
                const run = await notify.attempt(() => api.get(`threads/${this.run.thread_id}/runs/${this.run.id}`));
                if (!run)
                    return;
                this.run = run;
                await notify.attempt(() => this.reload());
                this.renderRun();
            }
        }
        finally {
            this.following = false;
        }
        this.settled(this.run);
    }
    async reload() {
        const { thread_id: threadId, id } = this.run;
        const [steps, messages] = await Promise.all([
            api.listAll(`threads/${threadId}/runs/${id}/steps`, INCLUDE),
            api.listAll(`threads/${threadId}/messages`, { run_id: id }),
        ]);
        for (const message of messages)
            this.messages.set(message.id, message);
        for (const step of steps)
            this.putStep(step);
    }
}
