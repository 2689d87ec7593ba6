"""One text policy for every identifier, name and free text fireflow accepts.

Identifiers and names (ticket, community, town, person, agency and plan ids,
display names) are what people compare by eye: "金峰小区" and "金峰小区\\u200b"
look the same and must not become two dossiers.  So every name is

* normalised to NFC (Unicode canonical composition);
* free of C0 and C1 control characters (U+0000-U+001F, U+007F-U+009F),
  including tab and newline;
* free of bidirectional controls (U+202A-U+202E, U+2066-U+2069) and of every
  other invisible format character (Unicode category ``Cf``: U+200B-U+200D,
  U+2060, U+FEFF, U+00AD, ...), line and paragraph separators (U+2028, U+2029)
  and lone surrogates;
* non-empty, without leading or trailing white space, and at most
  :data:`MAX_NAME_LENGTH` characters (a caller may pass a smaller limit).

Free text (descriptions, notes, reasons) follows the same refusals but keeps
newlines, carriage returns and tabs, and is at most :data:`MAX_TEXT_LENGTH`
characters.

Anything printed to a terminal goes through :func:`escape_for_terminal`, which
shows control and format characters as ``\\uXXXX`` instead of sending them.

>>> check_name("金峰小区", "community")
'金峰小区'
>>> check_name("金峰小区\\u200b", "community")  # doctest: +ELLIPSIS
Traceback (most recent call last):
fireflow.errors.InputLimitExceeded: community: invisible format character U+200B refused ...
>>> check_text("第一行\\n第二行", "description")
'第一行\\n第二行'
>>> escape_for_terminal("CL-1\\x1b[2J")
'CL-1\\\\u001b[2J'
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

from fireflow.errors import InputLimitExceeded, InvalidArgument

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "FreeText",
    "Name",
    "check_name",
    "check_text",
    "escape_for_terminal",
    "refusal_reason",
    "refused_character",
]

#: The longest identifier or name accepted, in characters.
MAX_NAME_LENGTH = 128
#: The longest free text accepted, in characters.
MAX_TEXT_LENGTH = 2000

# Characters refused everywhere, found in one compiled pass: every code point of the
# categories Cc, Cf, Cs, Zl and Zp (the whole table, so that no Python loop runs over
# the text; tests/test_hostile_parse.py checks it against unicodedata, code point by
# code point), plus U+2065 and U+13439-U+1343F (unassigned in Python 3.11's Unicode,
# format characters in later versions).
_REFUSED_RANGES = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_REFUSED_IN_NAME = re.compile(f"[\x00-\x1f\x7f-\x9f{_REFUSED_RANGES}]")
_REFUSED_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_REFUSED_RANGES}]")
_ASCII_PLAIN = re.compile(r"[\x20-\x7e]*")


def _describe(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"control character U+{code:04X} refused (不允许控制字符)"
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or code in (0x200E, 0x200F, 0x061C):
        return f"bidirectional control U+{code:04X} refused (不允许双向文本控制字符)"
    if code in (0x2028, 0x2029):
        return f"line separator U+{code:04X} refused (不允许行分隔符)"
    if 0xD800 <= code <= 0xDFFF:
        return "lone surrogate refused (不允许孤立代理字符)"
    return f"invisible format character U+{code:04X} refused (不允许不可见字符)"


def refused_character(text: str, *, free_text: bool = False) -> str | None:
    """The first character the policy refuses in ``text``, or ``None``.

    >>> refused_character("a\\u202eb")
    '\\u202e'
    >>> refused_character("a\\tb", free_text=True) is None
    True
    """
    if _ASCII_PLAIN.fullmatch(text):
        return None
    m = (_REFUSED_IN_TEXT if free_text else _REFUSED_IN_NAME).search(text)
    return None if m is None else m.group()


def refusal_reason(text: str, *, free_text: bool = False) -> str | None:
    """Why the policy refuses ``text`` (its first refused character), or ``None``.

    >>> refusal_reason("金峰小区\\u200b")
    'invisible format character U+200B refused (不允许不可见字符)'
    >>> refusal_reason("一\\n二", free_text=True) is None
    True
    """
    bad = refused_character(text, free_text=free_text)
    return None if bad is None else _describe(bad)


def _check(value: object, field: str, max_length: int, *, free_text: bool) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, f"expected text, got {type(value).__name__}")
    if len(value) > max_length:
        raise InputLimitExceeded(field, f"{len(value)} characters (at most {max_length})")
    bad = refused_character(value, free_text=free_text)
    if bad is not None:
        raise InputLimitExceeded(field, _describe(bad))
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
        if len(value) > max_length:  # pragma: no cover - NFC rarely lengthens text
            raise InputLimitExceeded(field, f"{len(value)} characters (at most {max_length})")
    return value


def check_name(value: object, field: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """An identifier or name under the policy, in NFC; otherwise a typed error naming ``field``.

    >>> check_name(" 金峰镇", "town")
    Traceback (most recent call last):
    fireflow.errors.InvalidArgument: town: leading or trailing white space (首尾不能有空白)
    """
    text = _check(value, field, max_length, free_text=False)
    if not text:
        raise InvalidArgument(field, "must not be empty (不能为空)")
    if text != text.strip():
        raise InvalidArgument(field, "leading or trailing white space (首尾不能有空白)")
    return text


def check_text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Free text under the policy (newlines, carriage returns and tabs kept), in NFC."""
    return _check(value, field, max_length, free_text=True)


def escape_for_terminal(text: str) -> str:
    """``text`` with every control, format or separator character shown as ``\\uXXXX``.

    Used for anything that came from a file or a store and is printed to a
    terminal, so that an escape sequence in a stored id is shown, not obeyed.

    >>> escape_for_terminal("金峰\\u202e小区")
    '金峰\\\\u202e小区'
    """
    if _ASCII_PLAIN.fullmatch(text):
        return text
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _name_validator(value: str) -> str:
    return check_name(value, "value")


def _text_validator(value: str) -> str:
    return check_text(value, "value")


#: A pydantic field type for identifiers and names under the policy.
Name = Annotated[str, AfterValidator(_name_validator)]
#: A pydantic field type for free text under the policy.
FreeText = Annotated[str, AfterValidator(_text_validator)]
