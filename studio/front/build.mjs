// Bundles src/ into ../static/bundle/ with content-hashed names and writes manifest.json (logical name ->
// hashed file) for the server; also copies axe-core for the accessibility tests (tests/vendor/axe.min.js).
// Output depends only on the sources and the lockfile.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = process.env.ONAIR_STUDIO_OUTDIR || join(here, "..", "static", "bundle");
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await build({
  entryPoints: { studio: join(here, "src", "main.js"), "studio-style": join(here, "src", "studio.css") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome90", "firefox88", "safari14"],
  legalComments: "none",
  entryNames: "[name].[hash]",
  outdir,
  metafile: true,
  logLevel: "warning",
});

const manifest = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint) continue;
  const name = basename(file);
  manifest[name.endsWith(".css") ? "studio.css" : "studio.js"] = name;
}
writeFileSync(join(outdir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
if (!process.env.ONAIR_STUDIO_OUTDIR) {
  const vendor = join(here, "..", "..", "tests", "vendor");
  mkdirSync(vendor, { recursive: true });
  copyFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), join(vendor, "axe.min.js"));
}
console.log("studio bundle:", readdirSync(outdir).join(", "));
