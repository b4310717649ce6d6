// Copies the prebuilt player builds the conformance tests play onair's output with into tests/vendor/.
// Nothing is bundled or changed: each file is the package's own dist build, so the tests exercise exactly what
// npm publishes at the versions package-lock.json pins (tests/test_players_conformance.py checks that).
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "vendor");
const files = {
  "shaka-player.compiled.js": "shaka-player/dist/shaka-player.compiled.js",
  "dash.all.min.js": "dashjs/dist/legacy/umd/dash.all.min.js",   // the UMD build: a plain <script> global
  "hls.min.js": "hls.js/dist/hls.min.js",                         // the full build (alternate audio, subtitles)
};
mkdirSync(vendor, { recursive: true });
let total = 0;
for (const [name, from] of Object.entries(files)) {
  copyFileSync(join(here, "node_modules", from), join(vendor, name));
  total += statSync(join(vendor, name)).size;
}
console.log(`tests/vendor: ${Object.keys(files).join(", ")} (${(total / 1e6).toFixed(2)} MB)`);
