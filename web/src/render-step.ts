// The tool calls of a run step: a function's arguments and output, code_interpreter's code, logs and
// images, file_search's results.

import { h } from "./dom.js";
import { fileImage } from "./render-message.js";
import type { CodeInterpreterCall, FileSearchCall, FunctionCall, RunStep, ToolCall } from "./types.js";

function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json; // still streaming in, or not JSON at all
  }
}

function functionCall(call: FunctionCall): HTMLElement[] {
  const { arguments: args, output } = call.function;
  const parts = [
    h("p", { class: "label" }, "Arguments"),
    h("pre", { class: "arguments" }, pretty(args ?? "")),
  ];
  if (output !== null && output !== undefined) {
    parts.push(h("p", { class: "label" }, "Output"), h("pre", { class: "output" }, output));
  }
  return parts;
}

function codeCall(call: CodeInterpreterCall): HTMLElement[] {
  const { input, outputs } = call.code_interpreter;
  return [
    h("p", { class: "label" }, "Code"),
    h("pre", { class: "code" }, h("code", {}, input ?? "")),
    ...(outputs ?? []).map((output) =>
      output.type === "logs"
        ? h("div", {}, h("p", { class: "label" }, "Output"), h("pre", { class: "output" }, output.logs))
        : h("figure", {}, fileImage(output.image.file_id, `Image output ${output.image.file_id}`)),
    ),
  ];
}

function searchCall(call: FileSearchCall): HTMLElement[] {
  const results = call.file_search?.results;
  if (!results) return [h("p", { class: "hint" }, "Searching…")];
  if (results.length === 0) return [h("p", {}, "No results.")];
  return [
    h(
      "ol",
      { class: "results", "aria-label": "Search results" },
      ...results.map((result) =>
        h(
          "li",
          {},
          h("span", { class: "source-name" }, result.file_name),
          ` · score ${result.score.toFixed(3)}`,
          ...(result.content ?? []).map((part) => h("blockquote", {}, part.text)),
        ),
      ),
    ),
  ];
}

const TITLES: Record<ToolCall["type"], string> = {
  function: "Function call",
  code_interpreter: "code_interpreter",
  file_search: "file_search",
};

export function renderToolCall(call: ToolCall): HTMLElement {
  let body: HTMLElement[];
  if (call.type === "function") body = functionCall(call);
  else if (call.type === "code_interpreter") body = codeCall(call);
  else body = searchCall(call);
  const name = call.type === "function" ? ` ${call.function?.name ?? ""}` : "";
  return h(
    "details",
    { class: `tool-call ${call.type}`, open: true, "data-call-id": call.id },
    h("summary", {}, `${TITLES[call.type]}${name}`),
    ...body,
  );
}

export function renderToolCalls(step: RunStep): HTMLElement[] {
  return step.step_details.type === "tool_calls"
    ? (step.step_details.tool_calls ?? []).map(renderToolCall)
    : [];
}
