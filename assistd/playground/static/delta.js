// Folding streamed deltas into the object they belong to, the way the official SDKs do: strings are
// appended, objects merged key by key, and arrays of objects merged by each entry's "index".
const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);
// Keys whose value names something rather than being text streamed in pieces.
const REPLACED = new Set(["index", "type", "id"]);
export function mergeDelta(target, delta) {
    for (const [key, value] of Object.entries(delta)) {
        const current = target[key];
        if (current === undefined || current === null || REPLACED.has(key)) {
            target[key] = value;
        }
        else if (typeof current === "string" && typeof value === "string") {
            target[key] = current + value;
        }
        else if (isObject(current) && isObject(value)) {
            mergeDelta(current, value);
        }
        else if (Array.isArray(current) && Array.isArray(value)) {
            mergeArray(current, value);
        }
        else if (value !== null && value !== undefined) {
            target[key] = value;
        }
    }
    return target;
}
function mergeArray(target, delta) {
    for (const entry of delta) {
        if (!isObject(entry) || typeof entry.index !== "number") {
            target.push(entry);
            continue;
        }
        const { index } = entry;
        const existing = target[index];
        if (isObject(existing)) {
            mergeDelta(existing, entry);
        }
        else {
            // A copy: the delta object is not ours to keep changing.
            target[index] = mergeDelta({}, entry);
        }
    }
}
