// The API has no way to list threads (OpenAI's never had one): the playground remembers the threads it
// made or opened, in this browser, with the assistant last used on each.

const STORAGE = "assistd.playground.threads";

export interface KnownThread {
  id: string;
  title: string;
  assistantId: string | null;
  createdAt: number;
}

export function knownThreads(): KnownThread[] {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(STORAGE) ?? "[]");
    return Array.isArray(stored)
      ? (stored as KnownThread[]).filter((entry) => typeof entry?.id === "string")
      : [];
  } catch {
    return [];
  }
}

function save(threads: KnownThread[]): void {
  localStorage.setItem(STORAGE, JSON.stringify(threads));
}

export function knownThread(id: string): KnownThread | undefined {
  return knownThreads().find((entry) => entry.id === id);
}

/** Adds the thread, or changes what is given of one already known; newest first. */
export function rememberThread(id: string, change: Partial<Omit<KnownThread, "id">> = {}): KnownThread {
  const threads = knownThreads();
  const existing = threads.find((entry) => entry.id === id);
  const updated: KnownThread = {
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

export function forgetThread(id: string): void {
  save(knownThreads().filter((entry) => entry.id !== id));
}
