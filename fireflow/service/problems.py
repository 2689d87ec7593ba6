"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the service answers with is one JSON object: ``type`` (a stable URI
naming the error class), ``title``, ``status``, ``detail``, and fireflow's own
members: ``error`` (the exception's class name), ``rule`` (the ``R-`` id, or null),
``field`` (the path of the offending field, or null), ``message_zh`` and
``message_en``.  The HTTP status follows the error's type:

=====================================================  ======
error                                                  status
=====================================================  ======
malformed request (not JSON, wrong content type)       400
no or bad credentials                                  401
not allowed (another agency, read-only token,
:class:`~fireflow.errors.NotAuthorized`)               403
unknown ticket, community, form, path                  404
state conflict (:class:`~fireflow.errors.TransitionNotAllowed`,
:class:`~fireflow.store.errors.ConcurrencyConflict`,
:class:`~fireflow.store.errors.DuplicateEventId`,
:class:`~fireflow.errors.PlanMismatch`)                409
``If-Match`` not the ticket's version                  412
body too large                                         413
invalid data (:class:`~fireflow.errors.InvalidArgument`,
:class:`~fireflow.errors.InvalidCommand`, ...)         422
store busy, unavailable or not verifying               503
=====================================================  ======

>>> from fireflow.errors import InvalidArgument
>>> p = problem_for(InvalidArgument("at", "naive datetime refused", rule="R-CAL-PHASES"))
>>> p.status, p.error, p.field, p.rule
(422, 'InvalidArgument', 'at', 'R-CAL-PHASES')
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fireflow.errors import (
    CalendarDataMissing,
    DefinitionError,
    FireflowError,
    InputLimitExceeded,
    InvalidArgument,
    NotAuthorized,
    PlanMismatch,
    Refusal,
    TransitionNotAllowed,
)
from fireflow.store.errors import (
    ConcurrencyConflict,
    DuplicateEventId,
    StoreBusy,
    StoreError,
    VerificationFailed,
)
from fireflow.text import escape_for_terminal

__all__ = ["PROBLEM_TYPE", "Problem", "ServiceError", "problem_for"]

#: The base of every problem's ``type`` (followed by the error's class name).
PROBLEM_TYPE = "https://fireflow.invalid/problems/"
#: The media type of a problem.
MEDIA_TYPE = "application/problem+json"

_TITLES: dict[int, tuple[str, str]] = {
    400: ("请求格式错误", "Bad request"),
    401: ("未认证", "Unauthenticated"),
    403: ("无权操作", "Forbidden"),
    404: ("未找到", "Not found"),
    405: ("方法不允许", "Method not allowed"),
    409: ("状态冲突", "Conflict"),
    412: ("版本不符", "Precondition failed"),
    413: ("请求过大", "Content too large"),
    415: ("内容类型不支持", "Unsupported media type"),
    422: ("数据无效", "Unprocessable content"),
    429: ("请求过多", "Too many requests"),
    500: ("内部错误", "Internal server error"),
    503: ("服务暂不可用", "Service unavailable"),
}


class Problem(BaseModel):
    """An RFC 9457 problem detail with fireflow's members (rule, field, both languages)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A URI naming the error class.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    error: str = Field(description="The error's class name, e.g. NotAuthorized.")
    rule: str | None = Field(default=None, description="The R- rule id that decided, if any.")
    field: str | None = Field(default=None, description="The offending field's path, if any.")
    message_zh: str
    message_en: str
    ticket: str | None = None
    state: str | None = None

    def body(self) -> bytes:
        """The JSON body (UTF-8)."""
        return self.model_dump_json().encode("utf-8")


class ServiceError(Exception):
    """An error raised by the HTTP layer itself (authentication, limits, media types).

    >>> ServiceError(403, "another agency", "不得代表其他部门", field="actor.agency").status
    403
    """

    def __init__(
        self,
        status: int,
        message_en: str,
        message_zh: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        error: str | None = None,
    ) -> None:
        self.status = status
        self.message_en = message_en
        self.message_zh = message_zh
        self.field = field
        self.rule = rule
        self.error = error or {
            400: "BadRequest",
            401: "Unauthenticated",
            403: "Forbidden",
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "ContentTooLarge",
            415: "UnsupportedMediaType",
        }.get(status, "ServiceError")
        super().__init__(message_en)


def _status(exc: BaseException) -> int:
    # the order matters: subclasses before their parents
    name = type(exc).__name__
    if name == "PreconditionFailed":
        return 412
    if isinstance(exc, NotAuthorized | PermissionError):
        return 403
    if isinstance(exc, TransitionNotAllowed | ConcurrencyConflict | DuplicateEventId):
        return 409
    if isinstance(exc, PlanMismatch):
        return 409
    if isinstance(exc, StoreBusy | VerificationFailed) or name in (
        "StoreUnavailable",
        "SchemaTooNew",
    ):
        return 503
    if isinstance(exc, InputLimitExceeded):
        return 422
    if isinstance(exc, LookupError) and not isinstance(exc, CalendarDataMissing):
        return 404
    if isinstance(exc, Refusal | InvalidArgument | CalendarDataMissing | DefinitionError):
        return 422
    if isinstance(exc, StoreError):
        return 503
    if isinstance(exc, FireflowError | ValueError):
        return 422
    return 500


def _clean(text: str, limit: int = 2000) -> str:
    """One line of plain text: control characters shown escaped, bounded."""
    text = escape_for_terminal(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem_for(exc: BaseException) -> Problem:
    """The problem detail for ``exc`` (any exception; unknown ones are a 500 without detail)."""
    if isinstance(exc, ServiceError):
        zh, en = _TITLES.get(exc.status, ("错误", "Error"))
        return Problem(
            type=PROBLEM_TYPE + exc.error,
            title=f"{zh} {en}",
            status=exc.status,
            detail=_clean(f"{exc.message_en} ({exc.message_zh})"),
            error=exc.error,
            rule=exc.rule,
            field=exc.field,
            message_zh=_clean(exc.message_zh),
            message_en=_clean(exc.message_en),
        )
    status = _status(exc)
    zh, en = _TITLES.get(status, ("错误", "Error"))
    name = type(exc).__name__
    if status == 500:
        return Problem(
            type=PROBLEM_TYPE + "InternalError",
            title=f"{zh} {en}",
            status=500,
            detail="an internal error; it has been logged (内部错误，已记录)",
            error="InternalError",
            message_zh="内部错误",
            message_en="internal error",
        )
    rule: Any = getattr(exc, "rule", None)
    field: Any = getattr(exc, "field", None)
    message_zh: Any = getattr(exc, "message_zh", "") or zh
    text = (
        str(exc)
        if not isinstance(exc, VerificationFailed)
        else ("the store does not verify; no document was built (事件库未通过校验，未生成文件)")
    )
    return Problem(
        type=PROBLEM_TYPE + name,
        title=f"{zh} {en}",
        status=status,
        detail=_clean(text),
        error=name,
        rule=rule if isinstance(rule, str) else None,
        field=field if isinstance(field, str) else None,
        message_zh=_clean(str(message_zh)),
        message_en=_clean(text),
        ticket=_opt(getattr(exc, "ticket", None)),
        state=_opt(getattr(exc, "state", None)),
    )


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None
