// #/threads: the threads this browser knows, a new one, or one opened by its id.
import * as api from "./api.js";
import { newThreadWith } from "./assistants-page.js";
import { field, h, time } from "./dom.js";
import { forgetThread, knownThreads, rememberThread } from "./local-threads.js";
import * as notify from "./notify.js";
import { go, refresh } from "./router.js";
export async function threadsPage(show) {
    const threads = knownThreads();
    const idInput = h("input", {
        type: "text",
        placeholder: "thread_…",
        autocomplete: "off",
        spellcheck: false,
        required: true,
    });
    const open = h("form", {
        class: "inline-form",
        "aria-label": "Open a thread by id",
        onsubmit: (event) => {
            event.preventDefault();
            const id = idInput.value.trim();
            void notify.attempt(async () => {
                const thread = await api.get(`threads/${encodeURIComponent(id)}`);
                rememberThread(thread.id, { createdAt: thread.created_at });
                go(`#/threads/${thread.id}`);
            });
        },
    }, field("Thread id", idInput), h("button", { type: "submit", class: "secondary" }, "Open"));
    const items = threads.map((thread) => h("li", { class: "thread-item" }, h("a", { href: `#/threads/${thread.id}` }, h("span", { class: "item-name" }, thread.title || "(no messages yet)"), h("span", { class: "item-meta" }, thread.id, " · ", time(thread.createdAt))), h("button", {
        type: "button",
        class: "danger small",
        "aria-label": `Delete thread ${thread.title || thread.id}`,
        onclick: () => void deleteThread(thread.id, () => refresh()),
    }, "Delete")));
    show(h("section", { class: "page", "aria-labelledby": "threads-title" }, h("h2", { id: "threads-title" }, "Threads"), h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void newThreadWith(threads[0]?.assistantId ?? null) }, "New thread")), items.length
        ? h("ul", { class: "item-list threads" }, ...items)
        : h("p", { class: "hint" }, "No threads in this browser yet. Threads made by programs can be opened by id."), open));
}
/** Deletes a thread on the server and forgets it here; one already gone is only forgotten. */
export async function deleteThread(id, then) {
    if (!confirm(`Delete the thread ${id} and its messages?`))
        return;
    await notify.attempt(async () => {
        try {
            await api.remove(`threads/${id}`);
        }
        catch (problem) {
            if (!(problem instanceof api.ApiError && problem.status === 404))
                throw problem;
        }
        forgetThread(id);
        notify.info(`Thread ${id} deleted.`);
        then();
    });
}
