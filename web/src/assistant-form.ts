// The form that creates or edits an assistant: what it shows, and the request body it makes.

import { check, field, h } from "./dom.js";
import type { Assistant, FileObject, FunctionDefinition, Model, Tool, VectorStore } from "./types.js";

const FUNCTION_TEMPLATE: FunctionDefinition = {
  name: "get_weather",
  description: "The current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", description: "The city's name" } },
    required: ["city"],
  },
};

export interface Choices {
  models: Model[];
  files: FileObject[];
  stores: VectorStore[];
}

export interface AssistantForm {
  element: HTMLFormElement;
  /** The body of POST /v1/assistants(/id); throws an Error naming the field that is wrong. */
  body(): Record<string, unknown>;
}

export function assistantForm(assistant: Assistant | null, choices: Choices): AssistantForm {
  const name = h("input", {
    type: "text",
    value: assistant?.name ?? "",
    maxlength: 256,
    autocomplete: "off",
  });

  const modelNames = choices.models.map((model) => model.id);
  if (assistant && !modelNames.includes(assistant.model)) modelNames.unshift(assistant.model);
  // A new assistant gets a real model: the scripted one only repeats what it is told.
  const chosenModel =
    assistant?.model ?? modelNames.find((id) => !id.startsWith("scripted")) ?? modelNames[0];
  const model = h(
    "select",
    { required: true },
    ...modelNames.map((id) => h("option", { value: id, selected: id === chosenModel }, id)),
  );

  const instructions = h("textarea", { rows: 5, value: assistant?.instructions ?? "" });
  const temperature = h("input", {
    type: "number",
    min: 0,
    max: 2,
    step: 0.1,
    inputmode: "decimal",
    value: assistant?.temperature ?? "",
  });

  const tools = assistant?.tools ?? [];
  const has = (type: Tool["type"]) => tools.some((tool) => tool.type === type);
  const codeInterpreter = h("input", { type: "checkbox", checked: has("code_interpreter") });
  const fileSearch = h("input", { type: "checkbox", checked: has("file_search") });

  const functions = h("div", { class: "functions" });
  const addFunction = (definition: FunctionDefinition) => {
    const json = JSON.stringify(definition, null, 2);
    // Tall enough to show the whole definition, up to a point.
    const rows = Math.min(Math.max(json.split("\n").length, 6), 24);
    const box = h("textarea", { rows, class: "json", spellcheck: false, value: json });
    const item = h("div", { class: "function" });
    const remove = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: () => {
          item.remove();
          numberFunctions();
        },
      },
      "Remove function",
    );
    item.append(field("Function", box), remove);
    functions.append(item);
    numberFunctions();
    return box;
  };
  // Labels say which function they are: "Function 2 (JSON)".
  const numberFunctions = () =>
    functions.querySelectorAll(".function").forEach((item, index) => {
      const label = item.querySelector("label");
      if (label) label.textContent = `Function ${index + 1} (JSON)`;
      item.querySelector("button")?.setAttribute("aria-label", `Remove function ${index + 1}`);
    });
  for (const tool of tools) if (tool.type === "function") addFunction(tool.function);
  const addButton = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: () => {
        const taken = new Set(functionBoxes().map((box) => nameIn(box.value)));
        const box = addFunction(
          taken.has(FUNCTION_TEMPLATE.name) ? { ...FUNCTION_TEMPLATE, name: "" } : FUNCTION_TEMPLATE,
        );
        box.focus();
      },
    },
    "Add function",
  );
  const functionBoxes = () => [...functions.querySelectorAll("textarea")];

  const chosenFiles = new Set(assistant?.tool_resources?.code_interpreter?.file_ids ?? []);
  const fileBoxes = choices.files
    .filter((file) => file.purpose === "assistants")
    .map((file) => {
      const box = h("input", { type: "checkbox", value: file.id, checked: chosenFiles.has(file.id) });
      return check(box, file.filename, " ", h("code", {}, file.id));
    });

  const chosenStore = assistant?.tool_resources?.file_search?.vector_store_ids?.[0] ?? "";
  const store = h(
    "select",
    {},
    h("option", { value: "" }, "(none)"),
    ...choices.stores.map((vectorStore) =>
      h(
        "option",
        { value: vectorStore.id, selected: vectorStore.id === chosenStore },
        `${vectorStore.name || vectorStore.id} (${count(vectorStore.file_counts.total, "file")})`,
      ),
    ),
  );

  const element = h(
    "form",
    {
      class: "assistant-form",
      "aria-label": assistant ? `Edit ${assistant.name || assistant.id}` : "New assistant",
    },
    field("Name", name),
    field("Model", model, "The models this server lists. Any other name reaches its default model."),
    field("Instructions", instructions),
    field("Temperature", temperature, "0 to 2; empty for the default (1)."),
    h(
      "fieldset",
      {},
      h("legend", {}, "Tools"),
      check(codeInterpreter, "code_interpreter: runs Python in a sandbox"),
      check(fileSearch, "file_search: searches the vector store below"),
    ),
    h("fieldset", {}, h("legend", {}, "Functions"), functions, addButton),
    h(
      "fieldset",
      {},
      h("legend", {}, "Files for code_interpreter"),
      ...(fileBoxes.length
        ? fileBoxes
        : [h("p", { class: "hint" }, "No files yet: upload some on the Files page.")]),
    ),
    field("Vector store for file_search", store),
  );

  const body = (): Record<string, unknown> => {
    const toolList: Tool[] = [];
    if (codeInterpreter.checked) toolList.push({ type: "code_interpreter" });
    if (fileSearch.checked) toolList.push({ type: "file_search" });
    functionBoxes().forEach((box, index) => {
      let definition: unknown;
      try {
        definition = JSON.parse(box.value);
      } catch (problem) {
        box.focus();
        throw new Error(`Function ${index + 1} is not valid JSON: ${(problem as Error).message}`);
      }
      toolList.push({ type: "function", function: definition as FunctionDefinition });
    });
    const fileIds = fileBoxes
      .map((item) => item.querySelector("input") as HTMLInputElement)
      .filter((box) => box.checked)
      .map((box) => box.value);
    const result: Record<string, unknown> = {
      name: name.value.trim() || null,
      model: model.value,
      instructions: instructions.value,
      tools: toolList,
      temperature: temperature.value === "" ? null : Number(temperature.value),
      tool_resources: {
        code_interpreter: { file_ids: fileIds },
        file_search: { vector_store_ids: store.value ? [store.value] : [] },
      },
    };
    return result;
  };

  return { element, body };
}

function count(number: number, noun: string): string {
  return `${number} ${noun}${number === 1 ? "" : "s"}`;
}

function nameIn(json: string): string | undefined {
  try {
    return (JSON.parse(json) as FunctionDefinition).name;
  } catch {
    return undefined;
  }
}
