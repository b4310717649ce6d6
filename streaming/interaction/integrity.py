"""The integrity report of a poll: who voted from where, how old their devices were, and which votes look stuffed.

Flags are computed here, from what each vote row carries (client IP, device issue time, time of the vote), when
the report is asked for; the vote path only stores those facts, so it stays one group-committed INSERT. A flag
never refuses or removes a vote: the producer decides to exclude flagged votes from a closed poll (polls.py keeps
the exclusion and its audit entry), and results then show both tallies.

- `ip`: the votes of one client IP beyond the first ONAIR_VOTE_FLAG_PER_IP (a household passes, a script not);
- `subnet`: the same per /24 (IPv4) or /48 (IPv6) beyond ONAIR_VOTE_FLAG_PER_SUBNET;
- `burst`: a vote by a young device (issued less than ONAIR_VOTE_YOUNG_DEVICE_SECONDS before it voted) whose
  subnet cast more than ONAIR_VOTE_BURST_VOTES such votes within ONAIR_VOTE_BURST_SECONDS around it: devices
  minted and spent in a hurry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from onair.core.settings import Settings

FLAGS = ("ip", "subnet", "burst")

# Device age at vote time, in seconds: the report counts votes per bucket.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 min", 60), ("1-10 min", 600), ("10-60 min", 3600), ("1-24 h", 86400), ("over 1 day", float("inf")))


@dataclass(frozen=True)
class Thresholds:
    per_ip: int
    per_subnet: int
    burst_votes: int
    burst_seconds: float
    young_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(settings.vote_flag_per_ip, settings.vote_flag_per_subnet, settings.vote_burst_votes,
                   settings.vote_burst_seconds, settings.vote_young_device_seconds)

    def to_json(self) -> dict[str, Any]:
        return {"per_ip": self.per_ip, "per_subnet": self.per_subnet, "burst_votes": self.burst_votes,
                "burst_seconds": self.burst_seconds, "young_device_seconds": self.young_seconds}


# One row per vote with its flags. A threshold of 0 turns its flag off. Votes whose IP was cleared by the
# retention job (or never known) carry no flags: there is nothing left to judge them by.
_FLAGGED = """
WITH v AS (
    SELECT option_id, created_at, client_ip,
           network(set_masklen(client_ip, CASE family(client_ip) WHEN 4 THEN 24 ELSE 48 END)) AS subnet,
           extract(epoch FROM created_at - device_issued_at) AS age
    FROM votes WHERE poll_id = $1
), w AS (
    SELECT *,
           row_number() OVER (PARTITION BY client_ip ORDER BY created_at) AS ip_n,
           row_number() OVER (PARTITION BY subnet ORDER BY created_at) AS subnet_n,
           count(*) FILTER (WHERE age < $5) OVER (
               PARTITION BY subnet ORDER BY created_at RANGE BETWEEN $6::interval PRECEDING AND $6::interval FOLLOWING
           ) AS young_near
    FROM v
)
SELECT option_id, created_at, client_ip, subnet, age,
       (client_ip IS NOT NULL AND $2 > 0 AND ip_n > $2) AS f_ip,
       (client_ip IS NOT NULL AND $3 > 0 AND subnet_n > $3) AS f_subnet,
       (client_ip IS NOT NULL AND $4 > 0 AND age < $5 AND young_near > $4) AS f_burst
FROM w
"""


def _args(poll_id: str, t: Thresholds) -> tuple[Any, ...]:
    return (poll_id, t.per_ip, t.per_subnet, t.burst_votes, t.young_seconds,
            timedelta(seconds=t.burst_seconds / 2))


async def removed_by(db: asyncpg.Pool | asyncpg.Connection, poll_id: str, flags: list[str], t: Thresholds
                     ) -> dict[int, int]:
    """Votes per option that carry any of `flags`: what excluding them takes away."""
    if not flags:
        return {}
    cond = " OR ".join(f"f_{f}" for f in flags if f in FLAGS)
    rows = await db.fetch(f"SELECT option_id, count(*) AS n FROM ({_FLAGGED}) f WHERE {cond} GROUP BY option_id",
                          *_args(poll_id, t))
    return {r["option_id"]: int(r["n"]) for r in rows}


def _bucket(age: float | None) -> str:
    if age is None:
        return "unknown"
    return next(name for name, upper in AGE_BUCKETS if age < upper)


async def report(db: asyncpg.Pool | asyncpg.Connection, poll_id: str, t: Thresholds, *, top: int = 20
                 ) -> dict[str, Any]:
    rows = await db.fetch(_FLAGGED, *_args(poll_id, t))
    flagged = dict.fromkeys((*FLAGS, "any"), 0)
    ips: dict[str, list[int]] = {}
    subnets: dict[str, list[int]] = {}
    ages = dict.fromkeys([*(name for name, _ in AGE_BUCKETS), "unknown"], 0)
    bursts: dict[str, dict[str, Any]] = {}
    for r in rows:
        marks = [f for f in FLAGS if r[f"f_{f}"]]
        for f in marks:
            flagged[f] += 1
        flagged["any"] += bool(marks)
        if r["client_ip"] is not None:
            ip_row = ips.setdefault(str(r["client_ip"]), [0, 0])
            ip_row[0] += 1
            ip_row[1] += bool(marks)
            net_row = subnets.setdefault(str(r["subnet"]), [0, 0])
            net_row[0] += 1
            net_row[1] += bool(marks)
        ages[_bucket(None if r["age"] is None else float(r["age"]))] += 1
        if r["f_burst"]:
            b = bursts.setdefault(str(r["subnet"]), {"subnet": str(r["subnet"]), "votes": 0,
                                                      "first": r["created_at"], "last": r["created_at"]})
            b["votes"] += 1
            b["first"], b["last"] = min(b["first"], r["created_at"]), max(b["last"], r["created_at"])

    def ranked(counts: dict[str, list[int]], key: str) -> list[dict[str, Any]]:
        order = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
        return [{key: k, "votes": v[0], "flagged": v[1]} for k, v in order]

    return {
        "poll_id": poll_id, "votes": len(rows), "thresholds": t.to_json(), "flagged": flagged,
        "top_ips": ranked(ips, "ip"), "top_subnets": ranked(subnets, "subnet"),
        "device_age": [{"bucket": k, "votes": v} for k, v in ages.items()],
        "bursts": [{**b, "first": b["first"].isoformat(), "last": b["last"].isoformat()}
                   for b in sorted(bursts.values(), key=lambda b: -b["votes"])],
    }
