"""Where the lab lives: its ports (one dedicated range), its state folder and its services.

Everything the lab starts listens on 127.0.0.1 in 27100-27199, so it never meets the machine's own
PostgreSQL (5432), Redis (6379) or other services. The range sits below the kernel's ephemeral range
(32768-60999 by default), the ports it hands to outgoing connections and to ``bind(port 0)``: a lab
there could find its port held, between the check and its own bind, by any client's connection (a
second lab's opsagent talking to its PostgreSQL did exactly that). ``python -m lab up`` still refuses
a port that is taken.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("LAB_STATE", ROOT / ".lab"))
HOST = "127.0.0.1"
BASE_PORT = int(os.environ.get("LAB_BASE_PORT", "27100"))


def port(offset: int) -> int:
    return BASE_PORT + offset


NGINX = port(0)
NGINX_STATUS = port(1)
POSTGRES = port(20)
REDIS = port(21)
NODE_EXPORTER = port(30)
PROCESS_EXPORTER = port(31)
POSTGRES_EXPORTER = port(32)
REDIS_EXPORTER = port(33)
NGINX_EXPORTER = port(34)
PROMETHEUS = port(40)
ALERTMANAGER = port(41)
OPSAGENT = port(50)

DB_NAME = "shop"
DB_USER = "shop"


@dataclass(frozen=True)
class Service:
    """One application service: its port, what it calls over HTTP, and its stores."""

    name: str
    port: int
    calls: tuple[str, ...] = ()
    stores: tuple[str, ...] = field(default=())  # "postgres", "redis"


SERVICES: tuple[Service, ...] = (
    Service("frontend", port(11), calls=("catalog", "cart", "checkout")),
    Service("catalog", port(12), stores=("postgres", "redis")),
    Service("cart", port(13), stores=("redis",)),
    Service("checkout", port(14), calls=("cart", "inventory", "payment", "shipping"), stores=("postgres",)),
    Service("inventory", port(15), stores=("postgres",)),
    Service("payment", port(16)),
    Service("shipping", port(17)),
)
BY_NAME = {s.name: s for s in SERVICES}
# The off-the-shelf dependencies, named as services so that a fault in one is a root cause like any.
DEPENDENCIES = ("postgres", "redis")


def url_of(service: str) -> str:
    return f"http://{HOST}:{BY_NAME[service].port}"


def postgres_dsn() -> str:
    return f"host={HOST} port={POSTGRES} dbname={DB_NAME} user={DB_USER} connect_timeout=2"


def redis_url() -> str:
    return f"redis://{HOST}:{REDIS}/0"


def logs_dir() -> Path:
    return STATE / "logs"
