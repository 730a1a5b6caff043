// The public API, called exactly as any client would: /v1 on the server that served this page, with the
// key the user typed. The key stays in this browser's localStorage and goes nowhere but that header.
import { readEvents } from "./sse.js";
const KEY_STORAGE = "assistd.playground.apiKey";
// Relative to the page, so that a server behind a path prefix works the same.
const BASE = new URL("v1/", document.baseURI);
export class ApiError extends Error {
    status;
    code;
    constructor(message, status, code = null) {
        super(message);
        this.status = status;
        this.code = code;
        this.name = "ApiError";
    }
}
export function apiKey() {
    return localStorage.getItem(KEY_STORAGE) ?? "";
}
export function setApiKey(key) {
    if (key)
        localStorage.setItem(KEY_STORAGE, key);
    else
        localStorage.removeItem(KEY_STORAGE);
    blobUrls.forEach((url) => url.then(URL.revokeObjectURL, () => undefined));
    blobUrls.clear();
}
function headers(json) {
    const result = new Headers({ "OpenAI-Beta": "assistants=v2" });
    const key = apiKey();
    if (key)
        result.set("Authorization", `Bearer ${key}`);
    if (json)
        result.set("Content-Type", "application/json");
    return result;
}
function url(path, query) {
    const result = new URL(path.replace(/^\//, ""), BASE);
    for (const [name, value] of Object.entries(query ?? {})) {
        for (const item of Array.isArray(value) ? value : [value])
            result.searchParams.append(name, item);
    }
    return result;
}
async function failure(response) {
    let message = `${response.status} ${response.statusText}`;
    let code = null;
    try {
        const body = (await response.json());
        if (body.error?.message)
            message = body.error.message;
        code = body.error?.code ?? null;
    }
    catch {
        // Not the API's JSON envelope (a proxy's page): the status line says enough.
    }
    return new ApiError(message, response.status, code);
}
async function send(method, path, init, query) {
    let response;
    try {
        response = await fetch(url(path, query), { method, ...init });
    }
    catch (error) {
        throw new ApiError(`The server cannot be reached (${String(error)}).`, 0);
    }
    if (!response.ok)
        throw await failure(response);
    return response;
}
export async function call(method, path, body, query) {
    const init = { headers: headers(body !== undefined) };
    if (body !== undefined)
        init.body = JSON.stringify(body);
    const response = await send(method, path, init, query);
    return (await response.json());
}
export const get = (path, query) => call("GET", path, undefined, query);
export const post = (path, body = {}, query) => call("POST", path, body, query);
export const remove = (path) => call("DELETE", path);
/** Every object of a cursor-paginated list, oldest first unless ``order`` says otherwise (at most
 * ``cap``: the playground shows lists, it does not export them). */
export async function listAll(path, query = {}, cap = 1000) {
    const items = [];
    let after;
    for (;;) {
        const page = await get(path, {
            order: "asc",
            limit: "100",
            ...query,
            ...(after ? { after } : {}),
        });
        items.push(...page.data);
        const last = page.data[page.data.length - 1];
        if (!page.has_more || !last || items.length >= cap)
            return items;
        after = last.id;
    }
}
/** POST with ``stream: true``: the run's events as they arrive. */
export async function* stream(path, body, query, signal) {
    const init = { headers: headers(true), body: JSON.stringify({ ...body, stream: true }) };
    if (signal)
        init.signal = signal;
    const response = await send("POST", path, init, query);
    if (!response.body)
        throw new ApiError("The server answered without a stream.", response.status);
    yield* readEvents(response.body);
}
export async function upload(file, purpose) {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    const response = await send("POST", "files", { headers: headers(false), body: form });
    return (await response.json());
}
// File contents need the Authorization header, which <img src> cannot send: they are fetched once and
// shown through blob: URLs.
const blobUrls = new Map();
export function fileUrl(fileId) {
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
