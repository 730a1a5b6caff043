// The public API, called exactly as any client would: /v1 on the server that served this page, with the
// key the user typed. The key stays in this browser's localStorage and goes nowhere but that header.

import { readEvents, type ServerEvent } from "./sse.js";
import type { FileObject, Page } from "./types.js";

const KEY_STORAGE = "assistd.playground.apiKey";
// Relative to the page, so that a server behind a path prefix works the same.
const BASE = new URL("v1/", document.baseURI);

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function apiKey(): string {
  return localStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  blobUrls.forEach((url) => url.then(URL.revokeObjectURL, () => undefined));
  blobUrls.clear();
}

function headers(json: boolean): Headers {
  const result = new Headers({ "OpenAI-Beta": "assistants=v2" });
  const key = apiKey();
  if (key) result.set("Authorization", `Bearer ${key}`);
  if (json) result.set("Content-Type", "application/json");
  return result;
}

function url(path: string, query?: Record<string, string | string[]>): URL {
  const result = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) result.searchParams.append(name, item);
  }
  return result;
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let code: string | null = null;
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string | null } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code ?? null;
  } catch {
    // Not the API's JSON envelope (a proxy's page): the status line says enough.
  }
  return new ApiError(message, response.status, code);
}

async function send(
  method: string,
  path: string,
  init: RequestInit,
  query?: Record<string, string | string[]>,
) {
  let response: Response;
  try {
    response = await fetch(url(path, query), { method, ...init });
  } catch (error) {
    throw new ApiError(`The server cannot be reached (${String(error)}).`, 0);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function call<T>(
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: unknown,
  query?: Record<string, string | string[]>,
): Promise<T> {
  const init: RequestInit = { headers: headers(body !== undefined) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await send(method, path, init, query);
  return (await response.json()) as T;
}

export const get = <T>(path: string, query?: Record<string, string | string[]>) =>
  call<T>("GET", path, undefined, query);
export const post = <T>(path: string, body: unknown = {}, query?: Record<string, string | string[]>) =>
  call<T>("POST", path, body, query);
export const remove = <T>(path: string) => call<T>("DELETE", path);

/** Every object of a cursor-paginated list, oldest first unless ``order`` says otherwise (at most
 * ``cap``: the playground shows lists, it does not export them). */
export async function listAll<T extends { id: string }>(
  path: string,
  query: Record<string, string | string[]> = {},
  cap = 1000,
): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await get<Page<T>>(path, {
      order: "asc",
      limit: "100",
      ...query,
      ...(after ? { after } : {}),
    });
    items.push(...page.data);
    const last = page.data[page.data.length - 1];
    if (!page.has_more || !last || items.length >= cap) return items;
    after = last.id;
  }
}

/** POST with ``stream: true``: the run's events as they arrive. */
export async function* stream(
  path: string,
  body: Record<string, unknown>,
  query?: Record<string, string | string[]>,
  signal?: AbortSignal,
): AsyncGenerator<ServerEvent> {
  const init: RequestInit = { headers: headers(true), body: JSON.stringify({ ...body, stream: true }) };
  if (signal) init.signal = signal;
  const response = await send("POST", path, init, query);
  if (!response.body) throw new ApiError("The server answered without a stream.", response.status);
  yield* readEvents(response.body);
}

export async function upload(file: File, purpose: string): Promise<FileObject> {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  const response = await send("POST", "files", { headers: headers(false), body: form });
  return (await response.json()) as FileObject;
}

// File contents need the Authorization header, which <img src> cannot send: they are fetched once and
// shown through blob: URLs.
const blobUrls = new Map<string, Promise<string>>();

export function fileUrl(fileId: string): Promise<string> {
  let found = blobUrls.get(fileId);
  if (!found) {
    found = send("GET", `files/${encodeURIComponent(fileId)}/content`, { headers: headers(false) })
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    // A failure is not kept: the next look may succeed.
    found.catch(() => blobUrls.delete(fileId));
    blobUrls.set(fileId, found);
  }
  return found;
}
