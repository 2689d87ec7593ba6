"""The errors fireflow raises: one root, split by when they happen.

Every error derives from :class:`FireflowError`.  Two families sit below it:

* :class:`DefinitionError`: the definition is wrong (a plan file, an override
  table).  It is found when the definition is loaded, never later.
* :class:`RuntimeRefusal` and the input errors: a call is wrong *now* (a naive
  datetime, a date outside the holiday data, a transition not allowed in the
  current state).

Errors carry structured fields (``field``, ``rule``, ...), not only a message,
so embedding code can react without parsing text.  Where a built-in exception
fits, the error also subclasses it (``ValueError``, ``LookupError``), so code
that already catches those keeps working.

>>> from fireflow.errors import FireflowError, CalendarDataMissing
>>> issubclass(CalendarDataMissing, FireflowError) and issubclass(CalendarDataMissing, LookupError)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "CalendarDataMissing",
    "CorruptHistory",
    "DefinitionError",
    "FireflowError",
    "InputLimitExceeded",
    "InvalidArgument",
    "InvalidCommand",
    "NaiveDatetime",
    "NotAuthorized",
    "OutputError",
    "PlanError",
    "PlanMismatch",
    "PlanNotFound",
    "Problem",
    "Refusal",
    "TransitionNotAllowed",
]


class FireflowError(Exception):
    """The root of every error fireflow raises on purpose."""


# --------------------------------------------------------------------------- #
# Definition time


class DefinitionError(FireflowError):
    """A definition (plan file, holiday override) is invalid."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a definition.

    ``path`` is the dotted path of the offending field (``phases[2].end``),
    ``source`` the file (or ``"<data>"``) it came from, ``rule`` the ``R-`` id
    whose data is broken when there is one.
    """

    source: str
    path: str
    message: str
    rule: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        tail = f" [{self.rule}]" if self.rule else ""
        return f"{where}: {self.path or '<root>'}: {self.message}{tail}"


class PlanError(DefinitionError, ValueError):
    """A plan file is invalid.  ``problems`` lists *every* problem found.

    >>> err = PlanError([Problem("p.yaml", "phases[0].end", "end before start")])
    >>> print(err)
    plan is invalid (1 problem):
      p.yaml: phases[0].end: end before start
    """

    def __init__(self, problems: Sequence[Problem], *, total: int | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        #: how many problems the file has (``problems`` may list only the first of them)
        self.total: int = len(self.problems) if total is None else total
        n = self.total
        lines = [f"plan is invalid ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class PlanNotFound(DefinitionError, LookupError):
    """No built-in plan by that name and no file at that path."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = tuple(available)
        super().__init__(
            f"no built-in plan or plan file named {name!r} (方案不存在); "
            f"built-in plans: {', '.join(self.available) or 'none'}"
        )


# --------------------------------------------------------------------------- #
# Run time: bad arguments and missing data


class InvalidArgument(FireflowError, ValueError):
    """An argument handed to the library is invalid.  ``field`` names it."""

    def __init__(self, field: str, message: str, *, rule: str | None = None) -> None:
        self.field = field
        self.rule = rule
        tail = f" [{rule}]" if rule else ""
        super().__init__(f"{field}: {message}{tail}")


class NaiveDatetime(InvalidArgument):
    """A datetime without a time zone was handed to the library (须带时区)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            field,
            "naive datetime refused: pass a time-zone-aware datetime "
            "(时间必须带时区, e.g. Asia/Shanghai)",
        )


class CalendarDataMissing(FireflowError, LookupError):
    """No official holiday data (and no plan override) for a year.

    fireflow never guesses a holiday calendar silently: ask for provisional
    estimates explicitly (``allow_provisional=True``) to get weekend-and-fixed-
    holiday estimates, which are then marked provisional.  ``year`` is the
    year without data, ``field`` the argument whose value needed it
    (``start``, ``n``, ``d``, ...) when known.
    """

    def __init__(
        self, year: int, available: tuple[int, int] | None = None, *, field: str | None = None
    ) -> None:
        self.year = year
        self.available = available
        self.field = field
        span = f"; data covers {available[0]}-{available[1]}" if available else ""
        where = f"{field}: " if field else ""
        super().__init__(
            f"{where}no official holiday data for {year} (缺少{year}年节假日数据){span}; "
            "add an override to the plan (holidays.overrides) or pass allow_provisional=True"
        )


class OutputError(FireflowError, OSError):
    """A file fireflow was asked to write was not written (what was there is untouched).

    ``path`` is the destination, ``reason`` a short id of why: ``symlink``,
    ``directory``, ``not_regular``, ``missing_folder``, ``not_a_folder``,
    ``name``, ``encoding`` or ``io`` (the operating system refused; ``errno`` is set).
    It is also an :class:`OSError`, so code that catches file errors keeps working.

    >>> err = OutputError("out/a.csv", "symlink", "the destination is a symbolic link")
    >>> print(err)
    cannot write out/a.csv: the destination is a symbolic link
    >>> err.path, err.reason, isinstance(err, OSError)
    ('out/a.csv', 'symlink', True)
    """

    def __init__(self, path: str, reason: str, message: str, *, errno: int | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write {path}: {message}")
        self.errno = errno
        self.filename = path

    def __str__(self) -> str:  # OSError's own would print "[Errno None] None: path"
        return str(self.args[0])


# --------------------------------------------------------------------------- #
# Run time: refusals of the ticket engine


class Refusal(FireflowError):
    """A command the rules refuse.  State is unchanged.

    ``rule`` is the ``R-`` id that refuses, ``ticket`` the ticket id, ``state``
    its state, ``trigger`` the command's kind; ``message_zh`` is for people.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str | None,
        ticket: str,
        state: str,
        trigger: str,
        message_zh: str = "",
        field: str | None = None,
    ) -> None:
        self.rule = rule
        self.ticket = ticket
        self.state = state
        self.trigger = trigger
        self.message_zh = message_zh
        self.field = field
        tail = f" [{rule}]" if rule else ""
        zh = f" ({message_zh})" if message_zh else ""
        super().__init__(f"ticket {ticket} in state {state!r}: {trigger}: {message}{zh}{tail}")


class TransitionNotAllowed(Refusal):
    """The trigger is not allowed in the ticket's current state."""


class NotAuthorized(Refusal, PermissionError):
    """The actor may not fire this trigger on this ticket (R-AUTH-…)."""


class InvalidCommand(Refusal, ValueError):
    """The command is malformed or breaks a rule of its own (``field`` names what)."""


class InputLimitExceeded(InvalidArgument):
    """An input is too large, too deep, or holds characters that are refused."""


class PlanMismatch(FireflowError, ValueError):
    """A ticket's history is bound to another plan than the one given (方案不一致).

    ``recorded`` is the ``(plan id, digest)`` the history records (its
    ``report`` event, or its latest ``plan_migrated`` event), ``given`` the
    plan's own.  Continue under the new plan only through an explicit
    migration, which is recorded (see docs/lifecycle.md).
    """

    def __init__(self, ticket: str, recorded: tuple[str, str], given: tuple[str, str]) -> None:
        self.ticket = ticket
        self.recorded = recorded
        self.given = given
        super().__init__(
            f"ticket {ticket} was recorded under plan {recorded[0]!r} ({recorded[1][:19]}), "
            f"not {given[0]!r} ({given[1][:19]}) (工单所依据的方案不一致); "
            "pass migrate_from to continue under the new plan with a recorded migration"
        )


class CorruptHistory(FireflowError):
    """Recorded history the engine cannot fold (历史记录无法折叠): an event of a verified
    store or a checked log that no decision could have produced (a route payload of the
    wrong shape, a report with no fields, a deadline before any route).

    ``ticket_id`` names the ticket, ``where`` the event's place (``position 4`` in a
    store, ``events.jsonl:7`` in a log), ``reason`` the engine's error.
    """

    def __init__(self, ticket_id: str, where: str, reason: str) -> None:
        self.ticket_id = ticket_id
        self.where = where
        self.reason = reason
        self.field = "events"
        super().__init__(f"corrupt history (历史记录损坏): ticket {ticket_id} at {where}: {reason}")
