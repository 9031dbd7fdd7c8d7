"""Console sign-in: an API token exchanged for a signed session cookie, and the CSRF token with it.

The cookie holds who signed in (name, role), when the session ends, a CSRF token, and the SHA-256 of
the API token used: every request checks that token again (configured, or issued and not revoked,
user not disabled), so revoking a token or disabling a user ends their console sessions at once.
The cookie is signed (HMAC-SHA256), not encrypted: it carries nothing secret but the CSRF token,
which only the page itself may read (the cookie is HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsagent.api.deps import ROLE_RANK, Principal
from opsagent.config import ApiRole, Settings
from opsagent.store.models import TokenRow, UserRow
from opsagent.store.users import hash_token

COOKIE = "opsagent_session"
LOGIN_COOKIE = "opsagent_login"
_KEY_FILE = "console.key"


@dataclass(frozen=True)
class ConsoleSession:
    name: str
    role: ApiRole
    token_sha256: str
    expires: float
    csrf: str

    @property
    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role)

    def may(self, role: ApiRole) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def secret_key(settings: Settings) -> bytes:
    """The configured key, else one kept in the data folder (created once, readable by its owner only)."""
    if settings.console.secret_key is not None:
        return settings.console.secret_key.get_secret_value().encode()
    path: Path = settings.data_dir / _KEY_FILE
    if path.is_file():
        return path.read_bytes().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        # O_EXCL: two processes starting at once agree on the first key written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs and reads session cookies with one key."""

    def __init__(self, key: bytes, hours: float) -> None:
        self._key = key
        self.max_age = int(hours * 3600)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, principal: Principal, token: str) -> tuple[str, ConsoleSession]:
        session = ConsoleSession(
            name=principal.name,
            role=principal.role,
            token_sha256=hash_token(token),
            expires=time.time() + self.max_age,
            csrf=secrets.token_urlsafe(24),
        )
        body = _b64(
            json.dumps(
                [session.name, session.role, session.token_sha256, session.expires, session.csrf]
            ).encode()
        )
        return f"{body}.{self._sign(body)}", session

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie carries, or None when it is missing, forged, malformed or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.partition(".")
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            name, role, digest, expires, csrf = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        if role not in ROLE_RANK or not isinstance(expires, int | float) or expires < time.time():
            return None
        return ConsoleSession(name=name, role=role, token_sha256=digest, expires=expires, csrf=csrf)

    def login_nonce(self) -> str:
        """A value for the sign-in form and its cookie (double submit: a login CSRF guard)."""
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def check_login_nonce(self, cookie: str | None, submitted: str | None) -> bool:
        if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
            return False
        nonce, _, signature = cookie.partition(".")
        return hmac.compare_digest(self._sign(nonce), signature)


def still_valid(settings: Settings, db: Session, session: ConsoleSession) -> Principal | None:
    """The session's principal if its token still grants the role it signed in with."""
    for configured in settings.api_tokens:
        digest = hash_token(configured.token.get_secret_value())
        if hmac.compare_digest(digest, session.token_sha256):
            return Principal(name=configured.name, role=configured.role)
    user = db.scalar(
        select(UserRow)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(
            TokenRow.token_sha256 == session.token_sha256,
            TokenRow.revoked_at.is_(None),
            UserRow.disabled.is_(False),
        )
    )
    if user is None or user.role not in ROLE_RANK:
        return None
    return Principal(name=user.name, role=user.role)
