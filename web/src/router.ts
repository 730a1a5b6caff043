// Hash routes (#/threads/thread_abc): the server serves one page, and a reload keeps the user's place.

export type Render = (parts: string[]) => Promise<void>;

/** Puts a page's content on screen, unless the user has moved to another page while it loaded (then
 * it returns false and shows nothing: an answer that comes late must not cover the newer page). */
export type Show = (...content: Node[]) => boolean;

let render: Render = async () => undefined;

/** The route's parts: "#/threads/thread_abc" is ["threads", "thread_abc"]. */
export function parts(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

export function startRouting(draw: Render): void {
  render = draw;
  window.addEventListener("hashchange", () => {
    // In-page anchors (#source-…) are not routes: the view stays.
    if (location.hash === "" || location.hash.startsWith("#/")) refresh();
  });
  refresh();
}

/** Draws the current route again (after a change the page shows in several places). */
export function refresh(): void {
  void render(parts());
}

export function go(hash: string): void {
  if (location.hash === hash) refresh();
  else location.hash = hash;
}
