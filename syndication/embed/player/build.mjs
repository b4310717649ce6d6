// Bundles src/ into ../static/player/ with content-hashed names and writes manifest.json
// (logical name -> hashed file) for the server. Output depends only on the sources and the lockfile.
// Two builds: dash.js first, as a chunk of its own that the player loads only when it plays DASH; then the
// player itself, which is told the chunk's hashed name at build time (so no page has to pass it along).
import { build } from "esbuild";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// ONAIR_PLAYER_OUTDIR lets a test rebuild elsewhere and compare with the committed bundle.
const outdir = process.env.ONAIR_PLAYER_OUTDIR || join(here, "..", "static", "player");
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2019", "chrome80", "firefox78", "safari13"],
  legalComments: "none",
  entryNames: "[name].[hash]",
  outdir,
  metafile: true,
  logLevel: "warning",
};

const entryOutputs = (result) =>
  Object.entries(result.metafile.outputs).filter(([, info]) => info.entryPoint).map(([file]) => basename(file));

const [dashName] = entryOutputs(await build({ ...common, entryPoints: { "player-dash": join(here, "src", "dash.js") } }));
const result = await build({
  ...common,
  entryPoints: { player: join(here, "src", "player.js"), "player-style": join(here, "src", "player.css") },
  define: { __DASH_CHUNK__: JSON.stringify(dashName) },
});

const manifest = {};
for (const name of entryOutputs(result)) manifest[name.endsWith(".css") ? "player.css" : "player.js"] = name;
manifest["player-dash.js"] = dashName;
writeFileSync(join(outdir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log("player bundle:", readdirSync(outdir).join(", "));
