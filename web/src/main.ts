// The page's frame: the API key form, the navigation, and which page the route shows.

import * as api from "./api.js";
import { assistantsPage } from "./assistants-page.js";
import { h, replace } from "./dom.js";
import { filesPage } from "./files-page.js";
import * as notify from "./notify.js";
import { go, refresh, startRouting, type Show } from "./router.js";
import { threadPage } from "./thread-page.js";
import { threadsPage } from "./threads-page.js";
import type { Model, Page } from "./types.js";

const main = document.getElementById("main") as HTMLElement;
const keyForm = document.getElementById("key-form") as HTMLFormElement;
const keyInput = document.getElementById("api-key") as HTMLInputElement;
const keyStatus = document.getElementById("key-status") as HTMLElement;

notify.mountNotices(document.getElementById("notices") as HTMLElement);

keyInput.value = api.apiKey();
keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  api.setApiKey(keyInput.value.trim());
  notify.dismiss();
  void checkKey();
  refresh();
});

// The skip link moves focus without touching the hash, which is the route.
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

/** Says whether the server takes the key (or needs none), with one cheap request. */
async function checkKey(): Promise<void> {
  keyStatus.className = "key-status";
  keyStatus.textContent = "Checking…";
  try {
    const models = await api.get<Page<Model>>("models");
    keyStatus.classList.add("ok");
    keyStatus.textContent = api.apiKey()
      ? `Key accepted · ${models.data.length} models`
      : `Connected without a key (open mode) · ${models.data.length} models`;
  } catch (problem) {
    keyStatus.classList.add("bad");
    keyStatus.textContent =
      problem instanceof api.ApiError && problem.status === 401
        ? api.apiKey()
          ? "Key refused: enter a valid API key."
          : "This server needs an API key."
        : notify.describe(problem);
  }
}

function markNavigation(section: string): void {
  document.querySelectorAll<HTMLAnchorElement>("nav.sections a").forEach((link) => {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
}

const TITLES: Record<string, string> = { threads: "Threads", assistants: "Assistants", files: "Files" };

// Counts the pages drawn: only the latest may put its content on screen.
let drawn = 0;

async function draw(parts: string[]): Promise<void> {
  const [section = "", id] = parts;
  if (!(section in TITLES)) {
    go("#/assistants");
    return;
  }
  const number = ++drawn;
  const show: Show = (...content) => {
    if (number !== drawn) return false;
    replace(main, ...content);
    return true;
  };
  markNavigation(section);
  notify.pageChanged();
  document.title = `${TITLES[section]} · assistd playground`;
  main.setAttribute("aria-busy", "true");
  try {
    if (section === "threads") await (id ? threadPage(show, id) : threadsPage(show));
    else if (section === "assistants") await assistantsPage(show, id ?? null);
    else await filesPage(show);
  } catch (problem) {
    show(
      h(
        "section",
        { class: "page" },
        h("h2", {}, "This page could not be shown"),
        h("p", { class: "run-error", role: "alert" }, notify.describe(problem)),
        h("button", { type: "button", onclick: refresh }, "Try again"),
      ),
    );
  } finally {
    if (number === drawn) {
      main.removeAttribute("aria-busy");
      // After a page change, keyboard focus starts in the new page rather than on a removed element.
      if (!document.activeElement || document.activeElement === document.body) {
        main.focus({ preventScroll: true });
      }
    }
  }
}

void checkKey();
startRouting(draw);
