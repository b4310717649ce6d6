// The DASH engine, built as a chunk of its own: the player loads it only when it plays DASH (`?engine=dash`),
// so the hls.js page keeps its weight. The media-player build of dash.js (no DRM, offline or MSS modules, which
// onair does not serve). It hands itself to the player through a global, as a classic script can.
import { MediaPlayer } from "../node_modules/dashjs/dist/modern/esm/dash.mediaplayer.min.js";

window.onairDash = { MediaPlayer };
