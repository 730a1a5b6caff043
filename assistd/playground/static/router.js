// Hash routes (#/threads/thread_abc): the server serves one page, and a reload keeps the user's place.
let render = async () => undefined;
/** The route's parts: "#/threads/thread_abc" is ["threads", "thread_abc"]. */
export function parts() {
    return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}
export function startRouting(draw) {
    render = draw;
    window.addEventListener("hashchange", () => {
        // In-page anchors (#source-…) are not routes: the view stays.
        if (location.hash === "" || location.hash.startsWith("#/"))
            refresh();
    });
    refresh();
}
/** Draws the current route again (after a change the page shows in several places). */
export function refresh() {
    void render(parts());
}
export function go(hash) {
    if (location.hash === hash)
        refresh();
    else
        location.hash = hash;
}
