"""XML AIT (ETSI TS 102 809, namespace urn:dvb:mhp:2009) for one app: a pure builder, no I/O.

The playout team loads this into the broadcast AIT; HbbTV terminals also accept it directly at a `.aitx` URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

AIT_CONTENT_TYPE = "application/vnd.dvb.ait+xml"
MHP_NS = "urn:dvb:mhp:2009"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

CONTROL_CODES = ("AUTOSTART", "PRESENT", "DESTROY", "KILL", "PREFETCH", "REMOTE", "DISABLED",
                 "PLAYBACK_AUTOSTART")
VISIBILITIES = ("NOT_VISIBLE_ALL", "NOT_VISIBLE_USERS", "VISIBLE_ALL")
MAX_URL = 2048
# TS 102 809 5.2.3: 0x0000-0x3FFF unsigned, 0x4000-0x7FFF signed applications; 0x8000-0xFFFD reserved for
# future use by DVB, 0xFFFE/0xFFFF wildcards. A receiver may ignore an application with a reserved id.
APP_ID_MAX = 0x7FFF
# mhpVersion per HbbTV release (TS 102 796 Table "mhpVersion"): a terminal only starts an application whose
# signalled version it implements, so signal the lowest one with everything the app uses.
HBBTV_1_0 = (1, 1, 1)    # XHTML, XHR, broadcast video: votes, chat, banners
HBBTV_1_5 = (1, 2, 1)    # adds MPEG-DASH: needed as soon as the app offers clips

ET.register_namespace("mhp", MHP_NS)
ET.register_namespace("xsi", XSI_NS)


class AitError(ValueError):
    """The app cannot be signalled as configured (caught at creation; here as a last line of defence)."""


@dataclass(frozen=True)
class AitApp:
    name: str
    org_id: int
    app_id: int
    url_base: str                    # absolute, ends with "/"
    location: str = ""               # relative to url_base; "" starts the document at url_base itself
    control_code: str = "PRESENT"
    version: int = 0                 # 0..31, bumped when the signalling changes
    priority: int = 1                # 0..255
    visibility: str = "VISIBLE_ALL"
    service_bound: bool = False
    language: str = "eng"            # ISO 639-2
    mhp_version: tuple[int, int, int] = HBBTV_1_0
    doc_type: str = "application/vnd.hbbtv.xhtml+xml"


def validate(app: AitApp) -> None:
    if not 1 <= app.org_id <= 0xFFFFFF:
        raise AitError("orgId must be in 1..0xFFFFFF")
    if not 1 <= app.app_id <= APP_ID_MAX:
        raise AitError("appId must be in 1..0x7FFF (0x8000-0xFFFF is reserved by ETSI TS 102 809)")
    if app.control_code not in CONTROL_CODES:
        raise AitError(f"controlCode must be one of {', '.join(CONTROL_CODES)}")
    if app.visibility not in VISIBILITIES:
        raise AitError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if not 0 <= app.priority <= 255:
        raise AitError("priority must be in 0..255")
    if not 0 <= app.version <= 31:
        raise AitError("version must be in 0..31")
    parts = urlsplit(app.url_base)
    if parts.scheme not in ("http", "https") or not parts.netloc or not app.url_base.endswith("/"):
        raise AitError("URLBase must be an absolute http(s) URL ending in '/'")
    if "://" in app.location or app.location.startswith("/"):
        raise AitError("applicationLocation must be relative to URLBase")
    if len(app.url_base) + len(app.location) > MAX_URL:
        raise AitError(f"URLBase + applicationLocation must be at most {MAX_URL} characters")


def needed_version(offers_dash: bool) -> tuple[int, int, int]:
    """HbbTV 1.0 terminals cannot play DASH: an app with clips is signalled for 1.5+, so a 1.0 terminal does not
    start it at all rather than showing a clip list it cannot play."""
    return HBBTV_1_5 if offers_dash else HBBTV_1_0


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{MHP_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def build(app: AitApp) -> bytes:
    """Return the UTF-8 XML AIT document for `app` (raises AitError for values a receiver would reject)."""
    validate(app)
    root = ET.Element(f"{{{MHP_NS}}}ServiceDiscovery")
    discovery = _sub(root, "ApplicationDiscovery", DomainName=urlsplit(app.url_base).hostname or "")
    application = _sub(_sub(discovery, "ApplicationList"), "Application")
    _sub(application, "appName", app.name, Language=app.language)
    ident = _sub(application, "applicationIdentifier")
    _sub(ident, "orgId", str(app.org_id))
    _sub(ident, "appId", str(app.app_id))
    desc = _sub(application, "applicationDescriptor")
    _sub(_sub(desc, "type"), "OtherApp", app.doc_type)
    _sub(desc, "controlCode", app.control_code)
    _sub(desc, "visibility", app.visibility)
    _sub(desc, "serviceBound", "true" if app.service_bound else "false")
    _sub(desc, "priority", str(app.priority))
    _sub(desc, "version", f"{app.version:02d}")
    mhp = _sub(desc, "mhpVersion")
    _sub(mhp, "profile", "0")
    for tag, value in zip(("versionMajor", "versionMinor", "versionMicro"), app.mhp_version, strict=True):
        _sub(mhp, tag, str(value))
    origin = urlsplit(app.url_base)
    _sub(_sub(application, "applicationBoundary"), "BoundaryExtension", f"{origin.scheme}://{origin.netloc}/")
    transport = _sub(application, "applicationTransport", **{f"{{{XSI_NS}}}type": "mhp:HTTPTransportType"})
    _sub(transport, "URLBase", app.url_base)
    _sub(application, "applicationLocation", app.location)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
