"""The one table of settings.

Each field of `Settings` is a setting: its env var is ``ONAIR_<NAME>``, its help and
validation live in the field metadata. The CLI help, the README test and the parser
all read this table, so a setting cannot exist without being documented.

long: the table is one on purpose (one place to read every setting); it grows with each setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from aiohttp import web

from onair.core import setting_checks as checks

ENV_PREFIX = "ONAIR_"


class SettingError(ValueError):
    """A setting has a value we cannot use; names the setting so the operator can fix it."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.env = env_name(name)
        super().__init__(f"{self.env}: {message}")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
             check: Callable[[Any], str | None] | None = None, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "check": check,
                                            "secret": secret})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "Address the web server binds to.")
    port: int = _setting(8080, "TCP port the web server listens on.", check=checks.port)
    allowed_hosts: str = _setting(
        "localhost,127.0.0.1,::1", "Host names (any port) absolute links may take from a request when "
        "ONAIR_PUBLIC_URL is unset (its Host, or X-Forwarded-Host from a trusted proxy), comma-separated; any other "
        "Host gets links to http://ONAIR_HOST:ONAIR_PORT.")
    data_dir: Path = _setting(Path(".onair"), "Directory for local objects, the embedded database and secrets.")
    public_url: str | None = _setting(
        None, "Base URL for absolute links in APIs, feeds, oEmbed and AIT (default: the request's host).",
        check=checks.http_url)
    database_url: str | None = _setting(
        None, "PostgreSQL (>= 15) URL; unset starts an embedded PostgreSQL in the data dir.",
        check=checks.postgres_url, secret=True)
    db_pool_size: int = _setting(10, "Maximum connections per process in the PostgreSQL pool.", check=checks.positive)
    db_acquire_timeout: float = _setting(
        3.0, "Longest wait (s) for a database connection (pool or new); past it a request answers 503.",
        check=checks.positive)
    db_statement_timeout: float = _setting(
        5.0, "Longest wait (s) for one database statement; a frozen database then answers 503, not a hang.",
        check=checks.positive)
    storage: str = _setting("local", "Object storage backend.", choices=("local", "s3"))
    s3_endpoint: str | None = _setting(None, "S3 endpoint URL (e.g. http://127.0.0.1:9000); unset uses AWS.",
                                       check=checks.http_url)
    s3_bucket: str = _setting("onair", "S3 bucket holding media objects.")
    s3_region: str = _setting("us-east-1", "S3 region used for SigV4 signing.")
    s3_access_key_id: str | None = _setting(None, "S3 access key id (unset: the AWS credential chain).",
                                            secret=True)
    s3_secret_access_key: str | None = _setting(None, "S3 secret access key.", secret=True)
    s3_delivery: str = _setting(
        "stream", "How the origin serves S3 objects: stream through onair, or redirect to a presigned URL.",
        choices=("stream", "redirect"))
    s3_connect_timeout: float = _setting(2.0, "S3 connect timeout (s); short, so the origin fails fast.",
                                         check=checks.positive)
    s3_read_timeout: float = _setting(5.0, "S3 read timeout (s) per attempt.", check=checks.positive)
    s3_max_attempts: int = _setting(2, "S3 attempts per call (first try included).", check=checks.positive)
    origin_offload: str = _setting("off", "`nginx`: onair decides, nginx sends the bytes (X-Accel-Redirect; "
                                   "deploy/nginx/onair-offload.conf, or onair-offload-s3.conf with S3 storage).",
                                   choices=("off", "nginx"))
    origin_offload_prefix: str = _setting("/_onair_internal/",
                                          "nginx internal location (aliasing objects/, or proxying to S3).",
                                          check=lambda v: None if re.fullmatch(r"/[\w/-]+/", v) else "like /x/")
    origin_offload_decision_seconds: int = _setting(
        2, "With ONAIR_ORIGIN_OFFLOAD=nginx: how long nginx may reuse an allowed /media decision for the same URL and "
        "Origin (X-Accel-Expires; never past a token's expiry or the rights window's end; never for geo-restricted "
        "assets or IP-bound tokens). A change of rights, unpublishing or a purge reaches viewers this much later. "
        "0: ask onair every time.", check=checks.not_negative)
    origin_storage_timeout: float = _setting(
        4.0, "Longest the origin waits for storage before answering 503 (a CDN's origin timeout is longer).",
        check=checks.positive)
    janitor_interval_seconds: float = _setting(
        600.0, "How often each job worker removes what killed processes left (temp files, dead jobs' scratch); "
        "also done at start (s).", check=checks.positive)
    origin_stale_metadata_seconds: float = _setting(
        60.0, "While the database is down, the origin serves ready media with asset metadata read at most this "
        "long ago (s); past it, 503. Short, so a takedown is never ignored for long.", check=checks.positive)
    media_generation_grace_seconds: float = _setting(
        86400.0, "After a source replacement goes live, how long the replaced renditions stay stored for players "
        "still on them (s); a day, as long as a CDN may keep an old manifest.", check=checks.positive)
    min_free_bytes: int = _setting(
        256 * 1024**2, "Free bytes the data dir needs; below it /readyz is not ready and jobs back off.")
    redis_url: str | None = _setting(None, "Redis URL for cross-process pub/sub; unset uses an in-process bus.",
                                     check=checks.redis_url, secret=True)
    admin_token: str | None = _setting(
        None, "Bearer token for admin and studio calls; unset generates one in the data dir.", secret=True)
    signing_key: str | None = _setting(
        None, "Secret for device ids and signed URLs; unset generates one in the data dir.", secret=True)
    ffmpeg: str | None = _setting(None, "Path to the ffmpeg binary; unset uses the one bundled by imageio-ffmpeg.")
    loudness_target: str = _setting("off", "Loudness of assets that choose none: broadcast (-23 LUFS), web (-16 LUFS), "
                                    "off (as the source).", choices=("broadcast", "web", "off"))
    ladder: str = _setting("fixed", "Rung bitrates of assets that choose none: fixed table, or per_title (a "
                           "complexity probe scales them).", choices=("fixed", "per_title"))
    job_concurrency: int = _setting(2, "Jobs (transcodes) one worker process runs at once.", check=checks.positive)
    url_pull_concurrency: int = _setting(
        4, "URL pulls one worker process runs at once, in their own pool (never in the transcode slots).",
        check=checks.positive)
    url_pull_per_caller: int = _setting(
        4, "URL pulls one caller (partner key, user, token) may have queued or running; more get 429. 0: no limit.",
        check=checks.not_negative)
    url_pull_min_bytes_per_second: int = _setting(
        8192, "A URL pull slower than this over ONAIR_URL_PULL_RATE_WINDOW_SECONDS fails (a dripping source must "
        "not hold a slot); 0 turns it off.", check=checks.not_negative)
    url_pull_rate_window_seconds: float = _setting(30.0, "Window over which the URL pull rate is measured (s).",
                                                   check=checks.positive)
    job_lease_seconds: float = _setting(30.0, "Job lease; a crashed worker's job is retried after it.",
                                        check=checks.positive)
    job_retry_base_seconds: float = _setting(
        5.0, "First back-off (s) after a transient (storage, database, network) job failure; doubles each time.",
        check=checks.positive)
    job_retry_max_seconds: float = _setting(600.0, "Longest single back-off (s) between transient retries.",
                                            check=checks.positive)
    job_retry_horizon_seconds: float = _setting(
        6 * 3600.0, "How long (s) a job keeps retrying transient failures before it is given up.",
        check=checks.positive)
    max_upload_bytes: int = _setting(10 * 1024**3, "Largest accepted upload in bytes.", check=checks.positive)
    tus_lease_seconds: float = _setting(
        30.0, "How long a tus PATCH holds its upload without news; a crashed replica's claim expires after it.",
        check=checks.positive)
    tus_idle_seconds: float = _setting(
        15.0, "A tus PATCH whose body sends nothing this long is ended (what arrived is kept), and a new PATCH at "
        "the committed offset takes over its claim; keep it above a third of ONAIR_TUS_LEASE_SECONDS.",
        check=checks.positive)
    allow_private_urls: bool = _setting(
        False, "Let URL pulls reach loopback/private addresses (only for tests and closed networks).")
    cors_origins: str = _setting("*", "Comma-separated origins allowed to fetch media and APIs cross-origin.")
    purge_webhook_url: str | None = _setting(
        None, "Where `cdn.purge` events (an asset's cache tags, when it changes) are delivered: a webhook endpoint "
        "kept in step with this setting.", check=checks.http_url)
    purge_webhook_secret: str | None = _setting(
        None, "Standard Webhooks secret (whsec_...) that signs purge deliveries; unset: derived from the signing "
        "key (see deploy/README.md).", check=checks.whsec, secret=True)
    partner_usage_threshold: int = _setting(
        10_000, "Requests a day after which a partner key's `partner.usage.threshold` event fires (0: never).",
        check=lambda v: None if v >= 0 else "must be zero or more")
    webhook_retry_schedule: str = _setting(
        "5,300,1800,7200,18000,36000,36000",
        "Seconds to wait before each webhook redelivery (comma-separated; about a day in all, as Standard Webhooks "
        "suggests); when they are used up the endpoint is disabled.", check=checks.schedule)
    webhook_timeout_seconds: float = _setting(10.0, "How long a webhook receiver may take to answer.",
                                              check=checks.positive)
    media_token_ttl: int = _setting(21600, "Lifetime in seconds of signed playback URLs issued by onair.",
                                    check=checks.positive)
    token_clock_skew_seconds: int = _setting(
        30, "How long past its expiry a signed playback URL is still accepted, for clocks that differ between the "
        "host that signs and the host that checks.", check=lambda v: None if v >= 0 else "must be zero or more")
    cloudfront_key_pair_id: str | None = _setting(
        None, "CloudFront key pair / public key id; set (with the key file) to issue CloudFront signed URLs.")
    cloudfront_private_key_file: Path | None = _setting(
        None, "PEM file with the RSA private key matching the CloudFront key pair id.", secret=True)
    cloudfront_domain: str | None = _setting(
        None, "Base URL of the CloudFront distribution in front of /media (e.g. https://dxxxx.cloudfront.net).",
        check=checks.http_url)
    country_header: str = _setting(
        "CloudFront-Viewer-Country,CF-IPCountry",
        "Comma-separated request headers carrying the viewer's ISO country, set by the CDN.")
    trusted_proxies: str = _setting(
        "", "Comma-separated CIDRs of proxies/CDN edges whose X-Forwarded-* and country headers are believed "
        "(empty: nobody's).", check=checks.cidrs)
    metrics_networks: str = _setting(
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
        "Comma-separated CIDRs allowed to read /metrics (the client IP, X-Forwarded-For believed only from trusted "
        "proxies); others need ONAIR_METRICS_TOKEN.", check=checks.cidrs)
    metrics_token: str | None = _setting(None, "Bearer token that opens /metrics from any address.", secret=True)
    embed_origins: str = _setting(
        "*", "Comma-separated origins allowed to frame the embed player when an asset sets none (* = any site).")
    embed_token_seconds: int = _setting(
        3600, "Lifetime of the signed playback URL the embed page hands out for private videos.", check=checks.positive)
    tally_interval_ms: int = _setting(250, "How often live poll tallies are published to viewers (ms).",
                                      check=checks.positive)
    vote_ip_ceiling: int = _setting(
        0, "Most first votes per poll from one client IP in one process (abuse ceiling); 0 turns it off.")
    vote_flag_per_ip: int = _setting(
        50, "Votes of one poll from one client IP beyond this many are flagged in the integrity report (counted, "
        "not refused); 0 turns the flag off.", check=checks.not_negative)
    vote_flag_per_subnet: int = _setting(
        500, "Votes of one poll from one /24 (IPv4) or /48 (IPv6) beyond this many are flagged; 0 turns it off.",
        check=checks.not_negative)
    vote_burst_votes: int = _setting(
        20, "A subnet casting more than this many votes from young devices within ONAIR_VOTE_BURST_SECONDS is a "
        "burst: those votes are flagged; 0 turns it off.", check=checks.not_negative)
    vote_burst_seconds: float = _setting(10.0, "Window of the vote burst flag (s).", check=checks.positive)
    vote_young_device_seconds: float = _setting(
        600.0, "A device issued less than this long before it votes is young (burst flag, device age report) (s).",
        check=checks.positive)
    privacy_retention_days: float = _setting(
        30.0, "Days client IPs, device ids and vote integrity data are kept before the periodic job deletes them.",
        check=checks.positive)
    device_pow_bits: int = _setting(
        12, "Proof-of-work to mint a device id: leading zero bits of SHA-256(challenge:nonce); each bit doubles "
        "the work (12: ~4,000 hashes, well under a second on a TV).", check=checks.pow_bits)
    device_challenge_seconds: int = _setting(120, "How long a device challenge may be solved and used (s).",
                                             check=checks.positive)
    device_mint_per_ip: int = _setting(
        20, "Device ids one client IP may mint per ONAIR_DEVICE_MINT_WINDOW_SECONDS, shared by all processes "
        "through Redis when configured; 0 turns it off.", check=checks.not_negative)
    device_mint_per_subnet: int = _setting(
        200, "Device ids one /24 (IPv4) or /48 (IPv6) may mint per window; 0 turns it off.", check=checks.not_negative)
    device_mint_window_seconds: float = _setting(600.0, "Window of the device minting limits (s).",
                                                 check=checks.positive)
    count_sessions_per_ip: int = _setting(
        100, "New player sessions one client IP may add to a video's statistics per 10 minutes (shared by all "
        "processes); beyond it events get 429. 0 turns it off.", check=checks.not_negative)
    chat_max_bytes: int = _setting(2048, "Largest chat message in bytes (UTF-8).", check=checks.positive)
    chat_rate_messages: int = _setting(3, "Chat messages a device may send per ONAIR_CHAT_RATE_SECONDS.",
                                       check=checks.positive)
    chat_rate_seconds: float = _setting(2.0, "Window of the per-device chat rate limit (s).", check=checks.positive)
    chat_cooloff_seconds: float = _setting(10.0, "Silence imposed on a device that exceeds the chat rate (s).",
                                           check=checks.positive)
    chat_ip_messages: int = _setting(
        120, "Messages one client IP may post to one room per minute, across all its devices and all processes; "
        "0 turns it off.", check=checks.not_negative)
    chat_history: int = _setting(50, "Messages a late joiner receives from a room's history.", check=checks.positive)
    chat_guard_entries: int = _setting(
        50_000, "Devices (and, separately, message texts) the chat guard remembers per process; the least "
        "recently active are forgotten first.", check=checks.positive)
    vote_ip_entries: int = _setting(
        100_000, "(poll, client IP) pairs the vote IP ceiling counts per process; the least recent are forgotten "
        "first.", check=checks.positive)
    cache_entries: int = _setting(
        10_000, "Entries each per-process lookup cache keeps (origin asset rows and object facts, poll "
        "definitions).", check=checks.positive)
    feed_cache_entries: int = _setting(64, "Built feed bodies kept per process.", check=checks.positive)
    live_rtmp_port: int = _setting(1935, "TCP port of the live RTMP ingest (rtmp://HOST:PORT/live/<key>).",
                                   check=checks.port)
    live_srt_port: int = _setting(9710, "UDP port of the live SRT ingest (srt://HOST:PORT?streamid=publish:<key>).",
                                  check=checks.port)
    live_ingest_host: str | None = _setting(None, "Address the RTMP/SRT listeners bind to; unset: ONAIR_HOST.")
    live_ingest: str = _setting(
        "auto", "When this process opens the RTMP/SRT ingest ports: auto (once a channel exists), on (at start: "
        "ingest pods behind a load balancer), off (never).", choices=("auto", "on", "off"))
    live_relay_host: str = _setting(
        "127.0.0.1", "Address the ingest hands accepted streams to encoders on (its relay listens there); with "
        "encoders in other pods, this pod's IP.")
    live_segment_seconds: float = _setting(2.0, "Duration of live CMAF segments (s); the encoder's GOP.",
                                           check=checks.positive)
    live_latency: str = _setting(
        "low", "Latency mode of new live channels unless they say otherwise: low (LL-HLS parts with blocking "
        "playlist reload and LL-DASH; several object writes and origin requests per second per rendition) or "
        "standard (whole segments only).", choices=("low", "standard"))
    live_part_seconds: float = _setting(
        0.5, "Target duration of LL-HLS parts / LL-DASH chunks in low-latency channels (s); rounded to whole frames "
        "that divide the segment.", check=checks.positive)
    live_reconnect_seconds: float = _setting(
        60.0, "How long a dropped live publisher may reconnect onto the same event before the channel ends (s).",
        check=checks.positive)
    live_max_height: int = _setting(720, "Top rung of the live ladder (short side, px); 720 suits a 2-core host.",
                                    check=checks.positive)
    live_stall_seconds: float = _setting(
        10.0, "A live publisher that sends nothing this long with its connection open is dropped (s).",
        check=checks.positive)
    live_poster_seconds: float = _setting(
        10.0, "How often a live channel's poster (images/poster.jpg) is refreshed from the stream (s).",
        check=checks.positive)
    live_preset: str = _setting("veryfast", "x264 preset of the live encoder.",
                                choices=("ultrafast", "superfast", "veryfast", "faster", "fast"))
    live_min_speed: float = _setting(0.9, "A live encoder slower than this times its input's pace drops its top "
                                     "rung, then speeds its preset, at the next input keyframe.", check=checks.positive)
    live_speed_window_seconds: float = _setting(10.0, "Window the live encoder's speed is judged over (s).",
                                                check=checks.positive)
    log_level: str = _setting("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _setting("auto", "Log format: json, text, or auto (json when not a terminal).",
                               choices=("auto", "json", "text"))
    access_log: str = _setting("all", "One log line per request: all, errors (status >= 400 or slower than 1 s; "
                               "for peak vote rates), or off.", choices=("all", "errors", "off"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise SettingError(f.name, f"{value!r} is not one of {', '.join(choices)}")
            check = f.metadata.get("check")
            if check and (problem := check(value)):
                raise SettingError(f.name, f"{value!r} {problem}")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @cached_property
    def allowed_host_set(self) -> frozenset[str]:
        return frozenset(h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",") if h.strip())

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @property
    def embed_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.embed_origins.split(",") if o.strip())

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return checks.networks(self.trusted_proxies)

    @property
    def metrics_network_list(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return checks.networks(self.metrics_networks)

    @property
    def country_headers(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.country_header.split(",") if h.strip())


_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _parse(name: str, type_: Any, raw: str) -> Any:
    kind = str(type_)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            return _BOOL[raw.strip().lower()]
        if kind.startswith("Path"):
            return Path(raw)
    except (ValueError, KeyError):
        raise SettingError(name, f"{raw!r} is not a valid {kind.split(' ')[0]}") from None
    return raw


@dataclass(frozen=True)
class SettingDoc:
    name: str
    env: str
    default: str
    help: str


# Where create_app keeps the Settings, so domain packages can read them without importing onair.app.
SETTINGS = web.AppKey("settings", Settings)


def documented() -> list[SettingDoc]:
    """Rows for `onair --help` and the README table."""
    rows = []
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else None
        shown = "(unset)" if default is None else (str(default) or "(empty)")
        if f.metadata.get("choices"):
            help_ = f"{f.metadata['help']} One of: {', '.join(f.metadata['choices'])}."
        else:
            help_ = f.metadata["help"]
        rows.append(SettingDoc(f.name, env_name(f.name), shown, help_))
    return rows

