// #/assistants: the list of assistants beside the form of the one chosen (or of a new one).

import * as api from "./api.js";
import { assistantForm } from "./assistant-form.js";
import { h } from "./dom.js";
import { rememberThread } from "./local-threads.js";
import * as notify from "./notify.js";
import { go, refresh, type Show } from "./router.js";
import type { Assistant, Deleted, FileObject, Model, Page, Thread, VectorStore } from "./types.js";

/** ``selected``: an assistant's id, "new", or null for none. */
export async function assistantsPage(show: Show, selected: string | null): Promise<void> {
  const [assistants, models, files, stores] = await Promise.all([
    api.listAll<Assistant>("assistants", { order: "desc" }),
    api.get<Page<Model>>("models"),
    api.listAll<FileObject>("files", { order: "desc" }),
    api.listAll<VectorStore>("vector_stores", { order: "desc" }),
  ]);
  const list = h(
    "nav",
    { class: "side", "aria-label": "Assistants" },
    h(
      "a",
      { class: "button", href: "#/assistants/new", "aria-current": selected === "new" ? "page" : null },
      "New assistant",
    ),
    assistants.length
      ? h(
          "ul",
          { class: "item-list" },
          ...assistants.map((assistant) =>
            h(
              "li",
              {},
              h(
                "a",
                {
                  href: `#/assistants/${assistant.id}`,
                  "aria-current": assistant.id === selected ? "page" : null,
                },
                h("span", { class: "item-name" }, assistant.name || "(unnamed)"),
                h("span", { class: "item-meta" }, `${assistant.model} · ${assistant.id}`),
              ),
            ),
          ),
        )
      : h("p", { class: "hint" }, "No assistants yet."),
  );

  const editor = h("section", { class: "main-pane", "aria-labelledby": "editor-title" });
  const choices = { models: models.data, files, stores };
  if (selected === "new") {
    editor.append(h("h2", { id: "editor-title" }, "New assistant"), creator(choices));
  } else if (selected) {
    const assistant =
      assistants.find((item) => item.id === selected) ?? (await api.get<Assistant>(`assistants/${selected}`));
    editor.append(
      h("h2", { id: "editor-title" }, assistant.name || assistant.id),
      editorOf(assistant, choices),
    );
  } else {
    editor.append(
      h("h2", { id: "editor-title" }, "Assistants"),
      h(
        "p",
        {},
        assistants.length
          ? "Choose an assistant to edit it or to chat with it, or make a new one."
          : "An assistant is a model with instructions and tools. Make one to start a conversation.",
      ),
      h("a", { class: "button", href: "#/assistants/new" }, "New assistant"),
    );
  }
  show(h("div", { class: "split" }, list, editor));
}

function creator(choices: Parameters<typeof assistantForm>[1]): HTMLElement {
  const form = assistantForm(null, choices);
  const submit = h("button", { type: "submit" }, "Create assistant");
  form.element.append(h("div", { class: "actions" }, submit));
  form.element.addEventListener("submit", (event) => {
    event.preventDefault();
    void notify.attempt(async () => {
      submit.disabled = true;
      try {
        const created = await api.post<Assistant>("assistants", form.body());
        notify.info(`Assistant ${created.name || created.id} created.`);
        go(`#/assistants/${created.id}`);
      } finally {
        submit.disabled = false;
      }
    });
  });
  queueMicrotask(() => form.element.querySelector("input")?.focus());
  return form.element;
}

function editorOf(assistant: Assistant, choices: Parameters<typeof assistantForm>[1]): HTMLElement {
  const form = assistantForm(assistant, choices);
  const save = h("button", { type: "submit" }, "Save changes");
  const chat = h(
    "button",
    { type: "button", onclick: () => void newThreadWith(assistant.id) },
    "Chat in a new thread",
  );
  const remove = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: () =>
        void notify.attempt(async () => {
          if (!confirm(`Delete the assistant ${assistant.name || assistant.id}?`)) return;
          await api.remove<Deleted>(`assistants/${assistant.id}`);
          notify.info(`Assistant ${assistant.name || assistant.id} deleted.`);
          go("#/assistants");
        }),
    },
    "Delete assistant",
  );
  form.element.append(
    h("p", { class: "item-meta" }, "id ", h("code", {}, assistant.id)),
    h("div", { class: "actions" }, save, chat, remove),
  );
  form.element.addEventListener("submit", (event) => {
    event.preventDefault();
    void notify.attempt(async () => {
      save.disabled = true;
      try {
        const updated = await api.post<Assistant>(`assistants/${assistant.id}`, form.body());
        notify.info(`Assistant ${updated.name || updated.id} saved.`);
        // The list shows names and models: draw the page again.
        refresh();
      } finally {
        save.disabled = false;
      }
    });
  });
  return form.element;
}

export async function newThreadWith(assistantId: string | null): Promise<void> {
  await notify.attempt(async () => {
    const thread = await api.post<Thread>("threads", {});
    rememberThread(thread.id, { assistantId, createdAt: thread.created_at });
    go(`#/threads/${thread.id}`);
  });
}
