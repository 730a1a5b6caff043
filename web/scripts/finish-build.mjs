// After tsc: copies the page and its style sheet beside the compiled modules, removes modules whose
// source is gone, and writes sources.sha256, the fingerprint of what the build was made from
// (tests/test_playground.py fails when the sources no longer match it: run `make playground`).

import { createHash } from "node:crypto";
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const web = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(web, "..", "assistd", "playground", "static");

copyFileSync(join(web, "index.html"), join(out, "index.html"));
copyFileSync(join(web, "app.css"), join(out, "app.css"));

const sources = readdirSync(join(web, "src")).filter((name) => name.endsWith(".ts"));
const modules = new Set(sources.map((name) => name.replace(/\.ts$/, ".js")));
for (const name of readdirSync(out)) {
  if (name.endsWith(".js") && !modules.has(name)) rmSync(join(out, name));
}

const inputs = [
  "app.css",
  "index.html",
  "package-lock.json",
  "package.json",
  "tsconfig.json",
  ...sources.map((name) => `src/${name}`),
].sort();
const lines = inputs.map((path) => {
  const digest = createHash("sha256")
    .update(readFileSync(join(web, path)))
    .digest("hex");
  return `${digest}  ${path}\n`;
});
writeFileSync(join(out, "sources.sha256"), lines.join(""));
console.log(`playground built into ${relative(process.cwd(), out) || "."} from ${inputs.length} sources`);
