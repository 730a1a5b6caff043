// Building DOM nodes without a framework: h("button", { type: "button", onclick }, "Save").
// Text always goes in as text nodes, never as HTML, so nothing the API returns can inject markup.
export function h(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
        if (value === null || value === undefined || value === false)
            continue;
        if (typeof value === "function") {
            element.addEventListener(name.replace(/^on/, ""), value);
        }
        else if (name in element && !name.startsWith("aria-") && !name.startsWith("data-") && name !== "list") {
            // Properties (value, checked, disabled, ...) rather than attributes: they are what the form shows.
            element[name] = value;
        }
        else {
            element.setAttribute(name, value === true ? "" : String(value));
        }
    }
    append(element, children);
    return element;
}
export function append(parent, children) {
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false)
            continue;
        parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
}
export function replace(parent, ...children) {
    parent.replaceChildren();
    append(parent, children);
}
let counter = 0;
/** A fresh id, for label/for and aria pairs. */
export function uid(prefix) {
    counter += 1;
    return `${prefix}-${counter}`;
}
/** A labelled form control: <div class="field"><label for=id>text</label>control</div>. */
export function field(label, control, hint) {
    const id = control.id || uid("field");
    control.id = id;
    const parts = [h("label", { for: id }, label), control];
    if (hint) {
        const hintId = `${id}-hint`;
        control.setAttribute("aria-describedby", hintId);
        parts.push(h("p", { class: "hint", id: hintId }, hint));
    }
    return h("div", { class: "field" }, ...parts);
}
export function time(seconds) {
    const date = new Date(seconds * 1000);
    return h("time", { datetime: date.toISOString(), title: date.toLocaleString() }, date.toLocaleString());
}
export function bytes(count) {
    if (count < 1024)
        return `${count} B`;
    if (count < 1024 * 1024)
        return `${(count / 1024).toFixed(1)} KiB`;
    return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}
/** A checkbox or radio button followed by its label. */
export function check(box, ...label) {
    box.id ||= uid("check");
    return h("div", { class: "check" }, box, h("label", { for: box.id }, ...label));
}
