// #/files: uploaded files, and vector stores with the files indexed in them.

import * as api from "./api.js";
import { bytes, field, h, replace, time } from "./dom.js";
import * as notify from "./notify.js";
import { downloadButton } from "./render-message.js";
import { refresh, type Show } from "./router.js";
import { words } from "./run-view.js";
import type { Deleted, FileObject, VectorStore, VectorStoreFile } from "./types.js";

const PURPOSES = ["assistants", "vision", "user_data", "batch", "fine-tune", "evals"];
const POLL_MS = 1000;

export async function filesPage(show: Show): Promise<void> {
  const [files, stores] = await Promise.all([
    api.listAll<FileObject>("files", { order: "desc" }),
    api.listAll<VectorStore>("vector_stores", { order: "desc" }),
  ]);
  const names = new Map(files.map((file) => [file.id, file.filename]));
  show(
    h(
      "div",
      { class: "page" },
      h(
        "section",
        { "aria-labelledby": "files-title" },
        h("h2", { id: "files-title" }, "Files"),
        uploadForm(),
        fileTable(files),
      ),
      h(
        "section",
        { "aria-labelledby": "stores-title" },
        h("h2", { id: "stores-title" }, "Vector stores"),
        h(
          "p",
          { class: "hint" },
          "file_search searches the vector store of the assistant (or of the thread).",
        ),
        storeForm(),
        h("div", { class: "cards" }, ...stores.map((store) => storeCard(store, files, names))),
      ),
    ),
  );
}

function uploadForm(): HTMLFormElement {
  const input = h("input", { type: "file", multiple: true, required: true });
  const purpose = h("select", {}, ...PURPOSES.map((name) => h("option", { value: name }, name)));
  const submit = h("button", { type: "submit" }, "Upload");
  return h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Upload files",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void busy(submit, async () => {
          for (const file of input.files ?? []) await api.upload(file, purpose.value);
          notify.info(`Uploaded ${input.files?.length ?? 0} file(s).`);
          refresh();
        });
      },
    },
    field("Files to upload", input),
    field("Purpose", purpose),
    submit,
  );
}

function fileTable(files: FileObject[]): HTMLElement {
  if (files.length === 0) return h("p", { class: "hint" }, "No files yet.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "files" },
      h("caption", { class: "visually-hidden" }, "Uploaded files"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Name", "Purpose", "Size", "Uploaded", "Actions"].map((title) =>
            h("th", { scope: "col" }, title),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        ...files.map((file) =>
          h(
            "tr",
            { "data-file-id": file.id },
            h("th", { scope: "row" }, file.filename, h("br"), h("code", {}, file.id)),
            h("td", { "data-label": "Purpose" }, file.purpose),
            h("td", { "data-label": "Size" }, bytes(file.bytes)),
            h("td", { "data-label": "Uploaded" }, time(file.created_at)),
            h(
              "td",
              { class: "row-actions" },
              downloadButton(file.id, file.filename, "Download"),
              h(
                "button",
                {
                  type: "button",
                  class: "danger small",
                  "aria-label": `Delete ${file.filename}`,
                  onclick: () =>
                    void notify.attempt(async () => {
                      if (!confirm(`Delete the file ${file.filename}?`)) return;
                      await api.remove<Deleted>(`files/${file.id}`);
                      notify.info(`File ${file.filename} deleted.`);
                      refresh();
                    }),
                },
                "Delete",
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

function storeForm(): HTMLFormElement {
  const name = h("input", { type: "text", required: true, maxlength: 256, autocomplete: "off" });
  const submit = h("button", { type: "submit" }, "Create vector store");
  return h(
    "form",
    {
      class: "inline-form",
      "aria-label": "New vector store",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void busy(submit, async () => {
          const store = await api.post<VectorStore>("vector_stores", { name: name.value.trim() });
          notify.info(`Vector store ${store.name} created.`);
          refresh();
        });
      },
    },
    field("New vector store name", name),
    submit,
  );
}

function storeCard(store: VectorStore, files: FileObject[], names: Map<string, string>): HTMLElement {
  const title = store.name || store.id;
  const list = h("ul", { class: "store-files", "aria-label": `Files in ${title}` });
  const counts = h("p", { class: "item-meta" });
  const card = h(
    "article",
    { class: "card store", "data-store-id": store.id, "aria-label": `Vector store ${title}` },
    h("h3", {}, title),
    h("p", { class: "item-meta" }, h("code", {}, store.id), " · created ", time(store.created_at)),
    counts,
    list,
  );

  const showCounts = (current: VectorStore) => {
    const { completed, in_progress: pending, failed, total } = current.file_counts;
    counts.textContent = `${total} file(s): ${completed} ready, ${pending} indexing, ${failed} failed`;
  };
  showCounts(store);

  // Lists the store's files; again every second while any is being indexed.
  const load = async (): Promise<void> => {
    const [current, entries] = await Promise.all([
      api.get<VectorStore>(`vector_stores/${store.id}`),
      api.listAll<VectorStoreFile>(`vector_stores/${store.id}/files`),
    ]);
    showCounts(current);
    replace(list, ...entries.map((entry) => storeFile(store, entry, names.get(entry.id) ?? entry.id, title)));
    if (entries.some((entry) => entry.status === "in_progress") && card.isConnected) {
      setTimeout(() => void notify.attempt(load), POLL_MS);
    }
  };
  void notify.attempt(load);

  const uploadInput = h("input", { type: "file", multiple: true, required: true });
  const uploadButton = h("button", { type: "submit" }, "Upload and add");
  const upload = h(
    "form",
    {
      class: "inline-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void busy(uploadButton, async () => {
          for (const file of uploadInput.files ?? []) {
            const uploaded = await api.upload(file, "assistants");
            names.set(uploaded.id, uploaded.filename);
            await api.post<VectorStoreFile>(`vector_stores/${store.id}/files`, { file_id: uploaded.id });
          }
          uploadInput.value = "";
          await load();
        });
      },
    },
    field(`Upload files into ${title}`, uploadInput),
    uploadButton,
  );

  const existing = h(
    "select",
    { required: true },
    h("option", { value: "" }, "(choose a file)"),
    ...files
      .filter((file) => file.purpose === "assistants")
      .map((file) => h("option", { value: file.id }, `${file.filename} · ${file.id}`)),
  );
  const addButton = h("button", { type: "submit", class: "secondary" }, "Add");
  const add = h(
    "form",
    {
      class: "inline-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void busy(addButton, async () => {
          await api.post<VectorStoreFile>(`vector_stores/${store.id}/files`, { file_id: existing.value });
          existing.value = "";
          await load();
        });
      },
    },
    field(`Add an uploaded file to ${title}`, existing),
    addButton,
  );

  const remove = h(
    "button",
    {
      type: "button",
      class: "danger small",
      onclick: () =>
        void notify.attempt(async () => {
          if (!confirm(`Delete the vector store ${title}? Its files stay.`)) return;
          await api.remove<Deleted>(`vector_stores/${store.id}`);
          notify.info(`Vector store ${title} deleted.`);
          refresh();
        }),
    },
    "Delete vector store",
  );
  card.append(upload, add, h("div", { class: "actions" }, remove));
  return card;
}

function storeFile(store: VectorStore, entry: VectorStoreFile, name: string, title: string): HTMLLIElement {
  const item = h(
    "li",
    { "data-file-id": entry.id, "data-status": entry.status },
    h("span", { class: "item-name" }, name),
    " ",
    h("span", { class: `badge ${entry.status}` }, words(entry.status)),
    entry.last_error ? h("span", { class: "run-error" }, ` ${entry.last_error.message}`) : null,
  );
  item.append(
    " ",
    h(
      "button",
      {
        type: "button",
        class: "link",
        "aria-label": `Remove ${name} from ${title}`,
        onclick: () =>
          void notify.attempt(async () => {
            await api.remove<Deleted>(`vector_stores/${store.id}/files/${entry.id}`);
            item.remove();
            notify.info(`${name} removed from ${title}.`);
          }),
      },
      "Remove",
    ),
  );
  return item;
}

/** Runs ``action`` with ``button`` disabled meanwhile; failures become notices. */
async function busy(button: HTMLButtonElement, action: () => Promise<void>): Promise<void> {
  button.disabled = true;
  try {
    await notify.attempt(action);
  } finally {
    button.disabled = false;
  }
}
