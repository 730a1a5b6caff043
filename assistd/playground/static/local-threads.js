// The API has no way to list threads (OpenAI's never had one): the playground remembers the threads it
// made or opened, in this browser, with the assistant last used on each.
const STORAGE = "assistd.playground.threads";
export function knownThreads() {
    try {
        const stored = JSON.parse(localStorage.getItem(STORAGE) ?? "[]");
        return Array.isArray(stored)
            ? stored.filter((entry) => typeof entry?.id === "string")
            : [];
    }
    catch {
        return [];
    }
}
function save(threads) {
    localStorage.setItem(STORAGE, JSON.stringify(threads));
}
export function knownThread(id) {
    return knownThreads().find((entry) => entry.id === id);
}
/** Adds the thread, or changes what is given of one already known; newest first. */
export function rememberThread(id, change = {}) {
    const threads = knownThreads();
    const existing = threads.find((entry) => entry.id === id);
    const updated = {
        id,
        title: "",
        assistantId: null,
        createdAt: Math.floor(Date.now() / 1000),
        ...existing,
        ...change,
    };
    save([updated, ...threads.filter((entry) => entry.id !== id)]);
    return updated;
}
export function forgetThread(id) {
    save(knownThreads().filter((entry) => entry.id !== id));
}
