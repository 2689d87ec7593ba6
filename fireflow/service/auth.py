"""Who is calling (调用方): principals, bearer tokens and the pluggable authenticator.

Every request is made by a :class:`Principal`: an agency of the plan, a named person
(may be empty for a system account), and whether it may only read.  The principal's
agency is the actor of every command it posts; it can never act for another agency.

**Tokens** (``fireflow serve token create|revoke|list``) are kept in a small JSON
file (:class:`TokenFile`), written whole or not at all through :mod:`fireflow.output`.
A token reads ``ff_<id>_<secret>``: the id finds the entry, the 256-bit secret is
stored only as a salted scrypt hash (a salt of 16 random bytes per token) and
compared with :func:`hmac.compare_digest`.  The token itself is shown once, at
creation.  A revoked token is refused from the next request on (the file is read
again when it changes).  Checking a scrypt hash costs tens of milliseconds, so a
token that has passed once is remembered in memory by a keyed digest (never on
disk) until the file changes.

**Single sign-on**: anything with an ``authenticate(headers) -> Principal`` method
is an :class:`Authenticator` (a district's own gateway can verify its JWTs or
client certificates and map them to agencies); :func:`fireflow.service.app.create_app`
takes one.

>>> import tempfile, pathlib
>>> from datetime import datetime, timezone
>>> tmp = tempfile.TemporaryDirectory()
>>> tokens = TokenFile(pathlib.Path(tmp.name) / "tokens.json")
>>> at = datetime(2022, 3, 21, tzinfo=timezone.utc)
>>> token, entry = tokens.create("town", "李", readonly=False, at=at)
>>> tokens.authenticate({"authorization": f"Bearer {token}"}).agency
'town'
>>> tokens.revoke(entry.id, at=at)
>>> tokens.authenticate({"authorization": f"Bearer {token}"})
Traceback (most recent call last):
...
fireflow.service.problems.ServiceError: the token is revoked
>>> tmp.cleanup()
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from fireflow import output
from fireflow._input import decode_utf8, load_json_text, read_limited
from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.service.problems import ServiceError
from fireflow.text import check_name

__all__ = [
    "TOKENS_FORMAT",
    "Authenticator",
    "Principal",
    "StaticAuthenticator",
    "TokenEntry",
    "TokenFile",
]

#: The ``format`` of a token file.
TOKENS_FORMAT = "fireflow.tokens/1"
_MAX_TOKEN_FILE = 4 * 1024 * 1024
_TOKEN = re.compile(r"ff_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_AGENCY = re.compile(r"[a-z][a-z0-9_]{0,63}")
# scrypt parameters: 16 MiB, about 50 ms per check on a small server
_N, _R, _P = 2**14, 8, 1


@attrs.frozen
class Principal:
    """An authenticated caller: its agency (the actor of its commands), person, rights."""

    agency: str
    person: str = ""
    readonly: bool = False
    subject: str = ""
    """Who vouched for it: ``token:<id>`` for a token, the SSO's subject otherwise."""


@runtime_checkable
class Authenticator(Protocol):
    """Turns a request's headers into a :class:`Principal`, or raises a 401 ServiceError.

    ``headers`` are the request's headers with lower-case names.
    """

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal making the request."""
        ...


def _unauthenticated(message: str, zh: str) -> ServiceError:
    return ServiceError(401, message, zh, field="Authorization", error="Unauthenticated")


def bearer(headers: Mapping[str, str]) -> str:
    """The bearer token of ``Authorization`` (401 when there is none)."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("a bearer token is required", "需要令牌 (Authorization: Bearer)")
    return token.strip()


@attrs.frozen
class StaticAuthenticator:
    """A fixed map of token -> principal (for tests and embedding; compared in constant time)."""

    tokens: Mapping[str, Principal]

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the presented token."""
        token = bearer(headers).encode("utf-8", "surrogatepass")
        found = None
        for known, principal in sorted(self.tokens.items()):
            if hmac.compare_digest(known.encode("utf-8"), token):
                found = principal
        if found is None:
            raise _unauthenticated("unknown token", "令牌无效")
        return found


@attrs.frozen
class TokenEntry:
    """One token as stored: never the token, only its salted hash."""

    id: str
    agency: str
    person: str
    readonly: bool
    salt: str
    hash: str
    created_at: str
    revoked_at: str | None = None
    note: str = ""

    def to_data(self) -> dict[str, Any]:
        """JSON data."""
        return attrs.asdict(self)

    def public(self) -> dict[str, Any]:
        """What ``token list`` shows (no salt, no hash)."""
        return {
            "id": self.id,
            "agency": self.agency,
            "person": self.person,
            "readonly": self.readonly,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "note": self.note,
        }


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "agency": str,
    "person": str,
    "readonly": bool,
    "salt": str,
    "hash": str,
    "created_at": str,
    "revoked_at": (str, type(None)),
    "note": str,
}


def _entry(item: object, where: str) -> TokenEntry:
    """A token entry from the file, every field checked (typed errors only)."""
    if not isinstance(item, dict) or set(item) != set(_FIELDS):
        raise InvalidArgument(where, f"expected the fields {', '.join(sorted(_FIELDS))}")
    for name, kind in _FIELDS.items():
        if not isinstance(item[name], kind):
            raise InvalidArgument(f"{where}.{name}", "wrong type")
    if (
        not re.fullmatch(r"[0-9a-f]{16}", item["id"])
        or not re.fullmatch(r"[0-9a-f]{32}", item["salt"])
        or not re.fullmatch(r"[0-9a-f]{64}", item["hash"])
    ):
        raise InvalidArgument(where, "malformed id, salt or hash")
    return TokenEntry(**item)


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(
        secret.encode("ascii"), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32
    ).hex()


def _aware(at: datetime) -> str:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    return at.isoformat()


class TokenFile:
    """Tokens in a JSON file (created on the first token); an :class:`Authenticator`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, TokenEntry] = {}
        self._key = secrets.token_bytes(32)  # keys the in-memory cache of checked tokens
        self._passed: dict[bytes, str] = {}

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    # ----------------------------------------------------------------- the file

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, TokenEntry]:
        """The entries, read again when the file changed (caller holds the lock)."""
        stamp = self._file_stamp()
        if stamp == self._stamp and (stamp is not None or not self._entries):
            return self._entries
        entries: dict[str, TokenEntry] = {}
        if stamp is not None:
            raw = read_limited(self.path, _MAX_TOKEN_FILE, "tokens")
            data = load_json_text(decode_utf8(raw, str(self.path), "tokens"), "tokens", "tokens")
            if not isinstance(data, dict) or data.get("format") != TOKENS_FORMAT:
                raise InvalidArgument("tokens", f"{self.path}: not a {TOKENS_FORMAT} file")
            items = data.get("tokens")
            if not isinstance(items, list):
                raise InvalidArgument("tokens", f"{self.path}: 'tokens' is not a list")
            for n, item in enumerate(items):
                entry = _entry(item, f"tokens[{n}]")
                entries[entry.id] = entry
        self._entries = entries
        self._stamp = stamp
        self._passed.clear()
        return entries

    def _save(self, entries: Mapping[str, TokenEntry]) -> None:
        data = {"format": TOKENS_FORMAT, "tokens": [e.to_data() for e in entries.values()]}
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        output.write_bytes(self.path, text.encode("utf-8"), create_folders=True)
        os.chmod(self.path, 0o600)
        self._stamp = None  # read again next time

    # ----------------------------------------------------------------- management

    def create(
        self, agency: str, person: str = "", *, readonly: bool, at: datetime, note: str = ""
    ) -> tuple[str, TokenEntry]:
        """A new token for ``agency`` (and ``person``): the token (shown once) and its entry."""
        if not isinstance(agency, str) or not _AGENCY.fullmatch(agency):
            raise InvalidArgument("agency", f"not an agency id: {agency!r}")
        if person:
            check_name(person, "person")
        if note:
            check_name(note, "note")
        with self._lock:
            entries = dict(self._load())
            token_id = secrets.token_hex(8)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16)
            entry = TokenEntry(
                id=token_id,
                agency=agency,
                person=person,
                readonly=bool(readonly),
                salt=salt.hex(),
                hash=_hash(secret, salt),
                created_at=_aware(at),
                note=note,
            )
            entries[token_id] = entry
            self._save(entries)
        return f"ff_{token_id}_{secret}", entry

    def revoke(self, token_id: str, *, at: datetime) -> None:
        """Revoke a token by its id (it stays listed, with the time of revocation)."""
        with self._lock:
            entries = dict(self._load())
            entry = entries.get(token_id)
            if entry is None:
                raise InvalidArgument("token_id", f"no token with id {token_id!r}")
            if entry.revoked_at is None:
                entries[token_id] = attrs.evolve(entry, revoked_at=_aware(at))
                self._save(entries)

    def list(self) -> list[TokenEntry]:
        """Every token entry (revoked ones too), by creation time and id."""
        with self._lock:
            return sorted(self._load().values(), key=lambda e: (e.created_at, e.id))

    # ----------------------------------------------------------------- checking

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the presented token (401 for a missing, unknown or revoked one)."""
        token = bearer(headers)
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise _unauthenticated("malformed token", "令牌格式无效")
        token_id, secret = match.groups()
        digest = hmac.new(self._key, token.encode("ascii"), hashlib.sha256).digest()
        with self._lock:
            entry = self._load().get(token_id)
            if entry is None:
                raise _unauthenticated("unknown token", "令牌无效")
            if entry.revoked_at is not None:
                raise _unauthenticated("the token is revoked", "令牌已吊销")
            known = self._passed.get(digest)
        if known != token_id:
            expected = bytes.fromhex(entry.hash)
            given = bytes.fromhex(_hash(secret, bytes.fromhex(entry.salt)))
            if not hmac.compare_digest(expected, given):
                raise _unauthenticated("unknown token", "令牌无效")
            with self._lock:
                self._passed[digest] = token_id
        return Principal(entry.agency, entry.person, entry.readonly, f"token:{entry.id}")
