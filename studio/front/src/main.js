// The studio's one script: each page names itself in <body data-page>; the parts it shows need permissions
// the server listed in data-perms (the API enforces them regardless).
import { PERMS } from "./util.js";
import { library } from "./library.js";
import { assetPage } from "./asset.js";
import { polls } from "./polls.js";
import { chat } from "./chat.js";
import { hbbtv, fillPolls } from "./hbbtv.js";
import { live } from "./live.js";
import { users, partners, audit, account } from "./admin.js";

function shows() {
  const hasPolls = PERMS.has("polls:write");
  if (hasPolls) polls(fillPolls);
  if (PERMS.has("chat:moderate")) chat();
  if (PERMS.has("hbbtv:write")) hbbtv(hasPolls);
}

const PAGES = { library, asset: assetPage, shows, live, users, partners, audit, account };
const start = PAGES[document.body.dataset.page];
if (start) start();
