"""Passwords removed from text before it is shown (错误信息中隐去密码).

Connection strings name a password (``postgresql://user:password@host/db``,
``password=...``); libpq quotes a malformed one, whole or in part, in its
messages, and a URL given where a path is expected ends up in "no such file".
:func:`redact` removes them; the store's errors
(:class:`fireflow.store.errors.StoreError`) and every error line the command line
prints (:func:`fireflow.cli.console.error_line`) go through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "redact", "secrets_of"]

#: What a password is shown as.
REDACTED = "***"
# user:password@ in a URL (scheme://user:password@host) ...
_URL_SECRET = re.compile(r"([A-Za-z][\w+.-]*://[^\s:/@\"']*):[^\s@\"']*@")
# ... and without its scheme, or with the slashes folded into one by a path
_BARE_SECRET = re.compile(r"(^|[\s\"'(=/])([^\s:/@\"'()]*):[^\s@\"'/]+@")
# password=... in a libpq key=value string
_KV_SECRET = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)")


def secrets_of(conninfo: str) -> list[str]:
    """The password texts written in a connection string, as written (even a malformed one).

    >>> secrets_of("postgresql://fireflow:s3cr%zzet@db/changle"), secrets_of("password='a b' x=1")
    (['s3cr%zzet'], ['a b'])
    """
    found = [m.group(0)[len(m.group(1)) + 1 : -1] for m in _URL_SECRET.finditer(conninfo)]
    found += [
        m.group(0)[len(m.group(1)) + len(m.group(2)) + 1 : -1]
        for m in _BARE_SECRET.finditer(conninfo)
    ]
    found += [m.group(2).strip("'") for m in _KV_SECRET.finditer(conninfo)]
    return sorted({f for f in found if f}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every password removed: those of URLs (``user:password@``) and of
    ``password=`` settings, and each of ``secrets`` wherever it appears.

    >>> redact('missing "=" after "fireflow:s3cret@db" in connection info string')
    'missing "=" after "fireflow:***@db" in connection info string'
    >>> redact("postgresql://fireflow:s3cret@db/changle: no such file")
    'postgresql://fireflow:***@db/changle: no such file'
    >>> redact('invalid percent-encoded token: "s3cr%zzet"', ["s3cr%zzet"])
    'invalid percent-encoded token: "***"'
    """
    for secret in secrets:
        if len(secret) >= 1:
            text = text.replace(secret, REDACTED)
    text = _URL_SECRET.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    text = _BARE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)
    return _KV_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
