// Bundles src/ into ../static/player/ with content-hashed names and writes manifest.json
// (logical name -> hashed file) for the server. Output depends only on the sources and the lockfile.
import { build } from "esbuild";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// ONAIR_PLAYER_OUTDIR lets a test rebuild elsewhere and compare with the committed bundle.
const outdir = process.env.ONAIR_PLAYER_OUTDIR || join(here, "..", "static", "player");
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await build({
  entryPoints: { player: join(here, "src", "player.js"), "player-style": join(here, "src", "player.css") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2019", "chrome80", "firefox78", "safari13"],
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
  manifest[name.endsWith(".css") ? "player.css" : "player.js"] = name;
}
writeFileSync(join(outdir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log("player bundle:", readdirSync(outdir).join(", "));
