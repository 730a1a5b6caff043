// A thread message as the user reads it: text with its citations and file links, images, attachments.
import { fileUrl } from "./api.js";
import { h } from "./dom.js";
import * as notify from "./notify.js";
/** An <img> whose picture is a stored file, fetched with the API key. */
export function fileImage(fileId, alt) {
    const image = h("img", { alt, class: "file-image", "data-file-id": fileId });
    fileUrl(fileId).then((url) => (image.src = url), () => image.replaceWith(h("span", { class: "missing" }, `(${alt}: cannot be loaded)`)));
    return image;
}
/** A button that saves a stored file under ``name``. */
export function downloadButton(fileId, name, label = name) {
    return h("button", {
        type: "button",
        class: "link file-link",
        title: `Download ${name} (${fileId})`,
        onclick: () => void notify.attempt(async () => {
            const link = h("a", { href: await fileUrl(fileId), download: name.split("/").pop() ?? name });
            document.body.append(link);
            link.click();
            link.remove();
        }),
    }, label);
}
// "【0:0†zorblax.pdf】" names the cited file after the dagger.
function citedName(annotation) {
    const match = /†([^】]*)】?$/.exec(annotation.text);
    return match?.[1] || annotation.text;
}
function renderText(messageId, value, annotations) {
    // The server counts characters by code point, as Python does; JavaScript strings count UTF-16 units.
    const characters = Array.from(value);
    const body = h("div", { class: "text" });
    const sources = [];
    let at = 0;
    const ordered = [...annotations].sort((a, b) => a.start_index - b.start_index);
    for (const annotation of ordered) {
        if (annotation.start_index < at || annotation.end_index > characters.length)
            continue;
        body.append(characters.slice(at, annotation.start_index).join(""));
        if (annotation.type === "file_citation") {
            const number = sources.length + 1;
            const sourceId = `source-${messageId}-${number}`;
            const name = citedName(annotation);
            body.append(h("a", {
                class: "citation",
                href: `#${sourceId}`,
                "aria-label": `Source ${number}: ${name}`,
                // The page routes by its hash: move to the source without leaving the thread.
                onclick: (event) => {
                    event.preventDefault();
                    const source = document.getElementById(sourceId);
                    source?.scrollIntoView({ block: "nearest" });
                    source?.focus();
                },
            }, `[${number}]`));
            sources.push(h("li", { id: sourceId, class: "source", tabindex: -1 }, h("span", { class: "source-name" }, name), " ", h("code", {}, annotation.file_citation.file_id)));
        }
        else {
            const path = annotation.text.replace(/^sandbox:/, "");
            body.append(downloadButton(annotation.file_path.file_id, path, path.split("/").pop() ?? path));
        }
        at = annotation.end_index;
    }
    body.append(characters.slice(at).join(""));
    const list = sources.length ? h("ol", { class: "sources", "aria-label": "Sources" }, ...sources) : null;
    return { body, sources: list };
}
function renderPart(message, part) {
    switch (part.type) {
        case "text": {
            const { body, sources } = renderText(message.id, part.text.value, part.text.annotations ?? []);
            return sources ? [body, sources] : [body];
        }
        case "image_file":
            return [h("figure", {}, fileImage(part.image_file.file_id, `Image ${part.image_file.file_id}`))];
        case "image_url":
            // Only shown as a link: the page loads nothing from other hosts.
            return [
                h("p", {}, "Image: ", h("a", { href: part.image_url.url, rel: "noreferrer" }, part.image_url.url)),
            ];
        case "refusal":
            return [h("p", { class: "refusal" }, part.refusal)];
        default:
            return [];
    }
}
export function renderMessage(message) {
    const who = message.role === "user" ? "You" : "Assistant";
    const streaming = message.status === "in_progress";
    const attachments = (message.attachments ?? []).map((attachment) => h("li", {}, h("code", {}, attachment.file_id), ` for ${attachment.tools.map((tool) => tool.type).join(" and ") || "the thread"}`));
    return h("article", {
        class: `message ${message.role}`,
        "data-message-id": message.id,
        "data-status": message.status ?? "",
        "aria-label": `${who} message`,
        "aria-busy": streaming ? "true" : "false",
    }, h("h3", { class: "who" }, who), ...message.content.flatMap((part) => renderPart(message, part)), streaming && message.content.length === 0 ? h("p", { class: "typing" }, "…") : null, attachments.length
        ? h("ul", { class: "attachments", "aria-label": "Attachments" }, ...attachments)
        : null, message.status === "incomplete" ? h("p", { class: "hint" }, "(incomplete)") : null);
}
