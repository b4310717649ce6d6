"""The studio's sections: one layout, one navigation, shown per role (the API enforces the same permissions).

Each section is a server-rendered shell (jinja2, autoescaped); the bundled script (studio/front, built by
`make studio` into static/bundle/ with content-hashed names) fills it from the public API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from onair.core.accounts import roles
from onair.core.auth import Principal, label, principal
from onair.core.web import StaticBundle, base_url, templates

HERE = Path(__file__).resolve().parent
BUNDLE_DIR = HERE / "static" / "bundle"
_env = templates(HERE / "templates")


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    permissions: tuple[str, ...]  # any one of them opens the section

    def open_to(self, role: str) -> bool:
        return any(roles.allows(role, p) for p in self.permissions)


SECTIONS = (
    Section("library", "Library", ("assets:read",)),
    Section("shows", "Shows", ("polls:write", "chat:moderate", "hbbtv:write")),
    Section("live", "Live", ("live:write",)),
    Section("partners", "Partners", ("partners:manage",)),
    Section("users", "Users", ("users:manage",)),
    Section("audit", "Audit log", ("audit:read",)),
)
BY_SLUG = {s.slug: s for s in SECTIONS}
# What the page scripts check before showing a control (the API decides regardless).
SHOWN = ("assets:write", "polls:write", "chat:moderate", "hbbtv:write", "banners:write", "live:write",
         "live:control", "stats:read", "users:manage", "partners:manage", "audit:read")


def _load_bundle() -> tuple[StaticBundle, dict[str, str]]:
    manifest = json.loads((BUNDLE_DIR / "manifest.json").read_text())
    return StaticBundle.load(BUNDLE_DIR, manifest.values()), manifest


BUNDLE, MANIFEST = _load_bundle()


def security_headers(request: web.Request) -> dict[str, str]:
    """A strict CSP: scripts and styles only from our hashed files (no 'unsafe-inline'); media and the preview
    iframe may come from the public URL when it differs from the host asked."""
    base = base_url(request)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base)) if base.startswith("http") else ""
    extra = f" {origin}" if origin else ""
    csp = (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{extra}; "
           f"frame-src 'self'{extra}; connect-src 'self'{extra}; media-src 'self' blob:{extra}; "
           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp}


def render(request: web.Request, name: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: object) -> web.Response:
    text = _env.get_template(name).render(css=MANIFEST["studio.css"], js=MANIFEST["studio.js"], **context)
    return web.Response(text=text, content_type="text/html", status=status,
                        headers={**security_headers(request), **(headers or {})})


def nav(who: Principal) -> list[Section]:
    return [s for s in SECTIONS if s.open_to(who.role)]


def first_section(who: Principal) -> str:
    shown = nav(who)
    return f"/studio/{shown[0].slug}" if shown else "/studio/account"


def shell(request: web.Request, who: Principal, page: str, title: str, status: int = 200,
          **context: object) -> web.Response:
    perms = [p for p in SHOWN if roles.allows(who.role, p)]
    return render(request, f"{page}.html", status=status, user=who, csrf=who.csrf_token, nav=nav(who),
                  page=page, title=title, perms=" ".join(perms), base=base_url(request).rstrip("/"), **context)


async def _signed_in(request: web.Request) -> Principal:
    who = await principal(request)
    if who is None or who.session is None:
        raise web.HTTPSeeOther("/studio/")  # the login form
    if who.session.must_change_password:
        raise web.HTTPSeeOther("/studio/")  # the password form first
    return who


@label("public")  # a section of the studio, or the login form; the section's data needs its permission
async def section(request: web.Request) -> web.Response:
    who = await _signed_in(request)
    found = BY_SLUG.get(request.match_info["section"])
    if found is None:
        raise web.HTTPNotFound()
    if not found.open_to(who.role):
        return shell(request, who, "forbidden", "Not allowed", status=403, section=found)
    return shell(request, who, found.slug, found.title)


@label("public")  # the page of one asset (its data: assets:read)
async def asset_page(request: web.Request) -> web.Response:
    who = await _signed_in(request)
    if not BY_SLUG["library"].open_to(who.role):
        return shell(request, who, "forbidden", "Not allowed", status=403, section=BY_SLUG["library"])
    return shell(request, who, "asset", "Asset", asset_id=request.match_info["asset_id"])


@label("public")  # one's own account: change password, log out
async def account(request: web.Request) -> web.Response:
    who = await _signed_in(request)
    return shell(request, who, "account", "Your account")


@label("public")  # hashed, immutable bundle files
async def bundle_file(request: web.Request) -> web.StreamResponse:
    found = BUNDLE.respond(request, request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return found


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/studio/static/bundle/{name}", bundle_file, name="studio.bundle")
    r.add_get("/studio/assets/{asset_id}", asset_page, name="studio.asset")
    r.add_get("/studio/account", account, name="studio.account")
    r.add_get("/studio/{section:[a-z]+}", section, name="studio.section")
