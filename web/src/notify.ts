// One place for what the user should hear about: confirmations in a polite live region, errors in an
// alert region that screen readers announce at once. Both stay on screen until the next message.

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";

let region: HTMLElement | null = null;
let shownAt = 0;
let hideTimer: ReturnType<typeof setTimeout> | undefined;
// Confirmations go away by themselves; errors stay until dismissed or the user moves on.
const INFO_MS = 6000;

export function mountNotices(element: HTMLElement): void {
  region = element;
}

function show(text: string, kind: "info" | "error"): void {
  if (!region) return;
  const close = h(
    "button",
    { type: "button", class: "link", "aria-label": "Dismiss", onclick: dismiss },
    "×",
  );
  replace(
    region,
    h(
      "p",
      { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
      h("span", {}, text),
      close,
    ),
  );
  shownAt = Date.now();
  clearTimeout(hideTimer);
  if (kind === "info") hideTimer = setTimeout(dismiss, INFO_MS);
}

/** Another page is shown: what was said about the one before goes, unless it was said just now (by the
 * action that moved to this page). */
export function pageChanged(): void {
  if (Date.now() - shownAt > 1000) dismiss();
}

export function dismiss(): void {
  if (region) region.replaceChildren();
}

export function info(text: string): void {
  show(text, "info");
}

export function error(problem: unknown): void {
  show(describe(problem), "error");
}

export function describe(problem: unknown): string {
  if (problem instanceof ApiError) {
    const hint = problem.status === 401 ? " Enter a valid API key at the top of the page." : "";
    return `${problem.message}${hint}`;
  }
  return problem instanceof Error ? problem.message : String(problem);
}

/** Runs ``action``; a failure becomes an error notice instead of an unhandled rejection. */
export async function attempt<T>(action: () => Promise<T>): Promise<T | undefined> {
  try {
    return await action();
  } catch (problem) {
    error(problem);
    return undefined;
  }
}
