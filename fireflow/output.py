"""Every file fireflow writes goes through here: whole or not at all, never through a link.

CSV, XLSX, HTML, JSON, PNG, checkpoints, plan YAML and JUnit XML are all
written by :func:`write_bytes` (or :func:`write_text`, :func:`write_csv`,
:func:`write_frame_csv` on top of it):

1. the content is produced first, in memory: an error while producing it
   touches no file;
2. it is written to a temporary file in the destination's own folder
   (``.NAME~RANDOM.tmp``, created exclusively, never following a link),
   flushed and ``fsync``-ed;
3. the temporary file is renamed over the destination (one atomic step on
   POSIX and Windows), and the folder is ``fsync``-ed where the operating
   system allows it, so the new name survives a power loss.

A reader sees the old file or the new one, never a half-written one.  When
anything fails the temporary file is removed and what was at the
destination is left exactly as it was.  A replaced file keeps its
permission bits; a new one gets the usual ``0o666`` less the umask.

What is refused, with :class:`~fireflow.errors.OutputError` (a
:class:`~fireflow.errors.FireflowError` and an :class:`OSError`) naming the
path and a ``reason``:

* ``symlink``: the destination is a symbolic link (even a dangling one).
  Writing through it would let a link planted in a shared folder overwrite
  another file (a ``.bashrc``, another district's form); replacing the link
  silently would surprise whoever made it.  So neither: remove the link or
  choose another name.
* ``directory``: the destination is a folder (a file name is expected);
  ``not_regular``: it is a device, a pipe or a socket.
* ``missing_folder``: the destination's folder does not exist.  Folders are
  created only when the caller asks (``create_folders=True``, e.g. the
  simulator's ``--out`` folder); ``not_a_folder``: the folder is a file.
* ``name``: a name fireflow would create (the file's name, a folder it
  would make) holds a control, bidirectional or invisible character (the
  characters :func:`fireflow.text.refused_character` refuses in names):
  ``report\\u202eLMTH.csv`` shows as
  another name in a listing.  A
  folder that already exists is the user's own and is not refused
  (:func:`check_new_names`);
* ``encoding``: the text cannot be encoded as UTF-8 (a lone surrogate);
  ``io``: the operating system refused (no space, no permission; ``errno``
  is set).

Only the *last* component of a destination is checked for links.  The
folders above it may be links (``/tmp`` on macOS, a home folder on network
storage): whoever names a path chose its folders.  An *output folder* that
fireflow fills on its own (:func:`prepare_folder`, ``simulate --out``) is
itself the destination and is refused when it is a link or a file.  A link
swapped in between the check and the rename is harmless: the rename
replaces the link itself, never its target.

CSV for people (:func:`csv_bytes`) opens correctly in Excel and WPS on a
Chinese Windows: UTF-8 with a byte-order mark, CRLF line ends, text that a
spreadsheet would run as a formula neutralised with a leading ``'``
(:func:`neutralise`), whole numbers written as whole numbers.

>>> import tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(tmp.name, "kpis.csv")
>>> _ = write_csv(path, [["=HYPERLINK(1)", 300], ["金峰镇", 2.0]], header=["town", "n"])
>>> data = path.read_bytes()
>>> data[:3] == b"\\xef\\xbb\\xbf", data[3:].decode("utf-8").splitlines()
(True, ['town,n', "'=HYPERLINK(1),300", '金峰镇,2'])
>>> pathlib.Path(tmp.name, "link.csv").symlink_to(path)
>>> write_text(pathlib.Path(tmp.name, "link.csv"), "x")
Traceback (most recent call last):
...
fireflow.errors.OutputError: cannot write .../link.csv: the destination is a symbolic link; ...
>>> sorted(p.name for p in pathlib.Path(tmp.name).iterdir())  # no temporary file left
['kpis.csv', 'link.csv']
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import numbers
import os
import secrets
import stat
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fireflow.errors import OutputError
from fireflow.text import escape_for_terminal, refused_character

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMULA_TRIGGERS",
    "NEUTRALISER",
    "check_destination",
    "check_folder",
    "check_new_names",
    "csv_bytes",
    "frame_rows",
    "is_formula_like",
    "neutralise",
    "open_atomic",
    "prepare_folder",
    "unneutralise",
    "write_bytes",
    "write_csv",
    "write_frame_csv",
    "write_text",
]

#: A cell whose first character that is not white space is one of these (after
#: NFKC folding, so full-width ``＝＋－＠`` and small forms count) runs as a formula.
FORMULA_TRIGGERS = frozenset("=+-@")
#: The prefix that makes a spreadsheet show a cell as text.
NEUTRALISER = "'"
#: Leading characters that are dangerous themselves (a spreadsheet may drop them and
#: then see a formula), and the neutraliser, which is doubled so that it reads back.
_DANGEROUS_START = ("\t", "\r", "\n", NEUTRALISER)

_USE_DIR_FD = (
    os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd  # os.replace uses the same renameat
    and os.unlink in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
    and hasattr(os, "O_DIRECTORY")
)
_O_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

PathLike = str | os.PathLike[str]


# =========================================================================== #
# Formula neutralisation (CSV injection)


def is_formula_like(text: str) -> bool:
    """Would a spreadsheet (Excel, WPS, LibreOffice) run this cell as a formula?

    True when the first character that is not white space folds (NFKC) to
    ``=``, ``+``, ``-`` or ``@``, or when the text starts with a tab, a
    carriage return or a line feed.

    >>> [is_formula_like(s) for s in ("=1+1", " ＝SUM(A1)", "\\t=1", "-3", "金峰", "a=b", "")]
    [True, True, True, True, False, False, False]
    """
    if text.startswith(("\t", "\r", "\n")):
        return True
    stripped = text.lstrip()
    return bool(stripped) and unicodedata.normalize("NFKC", stripped[0])[:1] in FORMULA_TRIGGERS


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it, never runs it: a leading ``'`` where needed.

    Text that :func:`is_formula_like`, or that starts with a tab, CR, LF or a
    ``'`` of its own, gets a ``'`` in front; :func:`unneutralise` takes it
    off again, so the round trip is exact.  Other text is returned unchanged.

    >>> neutralise("=HYPERLINK(\\"http://x\\")"), neutralise("＋86"), neutralise("金峰小区")
    ('\\'=HYPERLINK("http://x")', "'＋86", '金峰小区')
    >>> unneutralise(neutralise("'quoted")) == "'quoted"
    True
    """
    if text.startswith(_DANGEROUS_START) or is_formula_like(text):
        return NEUTRALISER + text
    return text


def unneutralise(text: str) -> str:
    """The inverse of :func:`neutralise` (for text written by fireflow's CSV writer)."""
    return text[1:] if text.startswith(NEUTRALISER) else text


# =========================================================================== #
# Checks


def _refuse(path: PathLike, reason: str, message: str, errno: int | None = None) -> OutputError:
    return OutputError(os.fspath(path), reason, message, errno=errno)


def _io_error(path: PathLike, exc: OSError) -> OutputError:
    if isinstance(exc, OutputError):
        return exc
    why = exc.strerror or str(exc) or type(exc).__name__
    return _refuse(path, "io", f"{why} (写入失败，原文件未改动 nothing was changed)", exc.errno)


_SYMLINK = (
    "the destination is a symbolic link; fireflow neither writes through a link "
    "nor replaces it (目标是符号链接，拒绝写入)"
)
_DIRECTORY = "the destination is a folder, a file name is expected (目标是文件夹，应为文件名)"
_NOT_REGULAR = "the destination is not a regular file (目标不是普通文件)"


def _missing_path(path: Path) -> bool:
    """True when nothing is at ``path`` (a NUL in it: nothing can be)."""
    try:
        return _lstat(path) is None
    except ValueError:
        return True
    except OSError:
        return False  # there, or unreadable: the other checks report it


def check_new_names(path: PathLike, *, folder: bool = False) -> None:
    """Refuse the names fireflow would create for ``path`` if one holds a refused character.

    Checked: the last name of ``path`` when it is a file (``folder`` false:
    it is written, so created or replaced), and every folder on the way that
    does not exist yet (it would be made); ``path`` itself when ``folder`` and
    missing.  Folders that exist are the user's own and are not checked.  The
    characters are those names refuse (:func:`fireflow.text.refused_character`:
    control, bidirectional, invisible); :class:`~fireflow.errors.OutputError`
    with reason ``name`` names the path (escaped) and the code point.  Every
    writer of this module calls it first, before it makes anything.

    >>> check_new_names("report\\u202eLMTH.csv")
    Traceback (most recent call last):
    ...
    fireflow.errors.OutputError: cannot write report\\u202eLMTH.csv: the name ... holds U+202E, ...
    """
    p = Path(os.fspath(path))
    is_file = not folder
    while p.name not in ("", ".", ".."):
        if not is_file and not _missing_path(p):
            return  # this folder and those above it exist
        bad = refused_character(p.name, free_text=False)
        if bad is not None:
            shown = escape_for_terminal(os.fspath(path))
            err = OutputError(
                shown,
                "name",
                f"the name {'of the file' if is_file else 'of a folder to make'} holds "
                f"U+{ord(bad):04X}, a control, bidirectional or invisible character; "
                "fireflow does not create such a name (名称含控制字符、双向控制字符或不可见字符，"
                "不创建)",
            )
            err.path = err.filename = os.fspath(path)  # the message shows it escaped
            raise err
        is_file = False
        p = p.parent


def _check_existing(path: PathLike, st: os.stat_result | None) -> None:
    """Refuse a destination that exists and is not a regular file."""
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "symlink", _SYMLINK)
    if stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "directory", _DIRECTORY)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "not_regular", _NOT_REGULAR)


def _lstat(path: PathLike, dir_fd: int | None = None) -> os.stat_result | None:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _split(path: PathLike) -> tuple[Path, str]:
    p = Path(os.fspath(path))
    if p.name in ("", ".", ".."):
        raise _refuse(path, "directory", _DIRECTORY)
    return p.parent, p.name


def _folder_ok(path: PathLike, folder: Path, create: bool) -> None:
    """The destination's folder exists (links allowed: see the module docs) or is made."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if not create:
            raise _refuse(
                path, "missing_folder", f"the folder {folder} does not exist (文件夹不存在)"
            ) from None
        prepare_folder(folder, create=True)
        return
    except OSError as exc:
        raise _io_error(path, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "not_a_folder", f"{folder} is not a folder (不是文件夹)")


def check_destination(path: PathLike, *, create_folders: bool = False) -> Path:
    """Check that a file may be written at ``path``, without writing; return it as a Path.

    Raises :class:`~fireflow.errors.OutputError` for a link, a folder, a
    special file or a missing folder (unless ``create_folders``, when a
    missing folder is fine: it would be created), and a name it would
    create that holds a refused character (:func:`check_new_names`).  A command with several
    outputs checks them all first, so one bad name does not leave the others
    half done.
    """
    folder, _ = _split(path)
    check_new_names(path)
    if not (create_folders and _lstat(folder) is None):
        _folder_ok(path, folder, create=False)
    try:
        existing = _lstat(path)
    except OSError as exc:
        raise _io_error(path, exc) from None
    _check_existing(path, existing)
    return Path(os.fspath(path))


def check_folder(path: PathLike) -> Path:
    """Check an output folder without making it: a missing one is fine (it will be made).

    Refused like :func:`prepare_folder`: a symbolic link, a file.  A command
    calls this before long work, so that a bad ``--out`` is reported at once.
    """
    check_new_names(path, folder=True)  # first: a NUL in a name would upset lstat
    if _lstat(path) is None:
        return Path(os.fspath(path))
    return prepare_folder(path)


def prepare_folder(path: PathLike, *, create: bool = False) -> Path:
    """Check (or make) an output folder that fireflow fills with files; return it.

    The folder itself must not be a symbolic link or a file; a missing one
    is created (with its parents) when ``create`` is true and refused
    otherwise; a folder to be made whose name holds a refused character is
    refused before any is made (:func:`check_new_names`).  Files are then
    written into it one by one, each atomically.
    """
    check_new_names(path, folder=True)  # before anything is made (a NUL upsets lstat)
    st = _lstat(path)
    if st is None:
        if not create:
            raise _refuse(path, "missing_folder", "the folder does not exist (文件夹不存在)")
        try:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            pass  # lost a race or a part is a file: checked just below
        except OSError as exc:
            raise _io_error(path, exc) from None
        st = _lstat(path)
        if st is None:
            raise _refuse(path, "missing_folder", "the folder could not be made (无法创建文件夹)")
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(
            path,
            "symlink",
            "the output folder is a symbolic link; fireflow does not write through a link "
            "(输出文件夹是符号链接，拒绝写入)",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "not_a_folder", "a file is there, a folder is expected (应为文件夹)")
    return Path(os.fspath(path))


# =========================================================================== #
# The atomic write


class _Folder:
    """The destination's folder: a file descriptor where the OS offers ``*at`` calls."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fd: int | None = None
        if _USE_DIR_FD:
            self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))

    def at(self, name: str) -> str:
        return name if self.fd is not None else os.fspath(self.folder / name)

    def lstat(self, name: str) -> os.stat_result | None:
        return _lstat(self.at(name), self.fd)

    def create(self, name: str, mode: int) -> int:
        return os.open(self.at(name), _O_FLAGS, mode, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(self.at(src), self.at(dst), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.at(name), dir_fd=self.fd)

    def sync(self) -> None:
        """Make the rename durable; some systems cannot fsync a folder (best effort)."""
        with contextlib.suppress(OSError):
            if self.fd is not None:
                os.fsync(self.fd)
            else:  # pragma: no cover (Windows opens no folder)
                fd = os.open(self.folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _temp_name(name: str) -> str:
    return f".{name[:60]}~{secrets.token_hex(6)}.tmp"  # under 255 bytes for any name


@contextlib.contextmanager
def open_atomic(path: PathLike, *, create_folders: bool = False) -> Iterator[IO[bytes]]:
    """Write a file atomically: yield a binary file, then replace ``path`` with it.

    When the ``with`` block ends normally the file is flushed, fsynced and
    renamed over ``path``; when it raises, the temporary file is removed,
    ``path`` is untouched and the exception goes on unchanged.  Checks and
    refusals are those of the module docs.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "a.json")
    ...     _ = path.write_text("old")
    ...     try:
    ...         with open_atomic(path) as f:
    ...             _ = f.write(b"half a")
    ...             raise ValueError("producing the content failed")
    ...     except ValueError:
    ...         pass
    ...     path.read_text(), len(list(pathlib.Path(tmp).iterdir()))
    ('old', 1)
    """
    folder_path, name = _split(path)
    check_new_names(path)
    _folder_ok(path, folder_path, create_folders)
    try:
        folder = _Folder(folder_path)
    except OSError as exc:
        raise _io_error(path, exc) from None
    try:
        try:
            existing = folder.lstat(name)
        except OSError as exc:
            raise _io_error(path, exc) from None
        _check_existing(path, existing)
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666
        tmp = _temp_name(name)
        try:
            fd = folder.create(tmp, mode)
        except OSError as exc:
            raise _io_error(path, exc) from None
        committed = False
        try:
            with os.fdopen(fd, "wb") as f:
                if existing is not None and hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), mode)  # the umask must not narrow a kept mode
                yield f
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    raise _io_error(path, exc) from None
            try:
                _check_existing(path, folder.lstat(name))  # narrow the window; see docs
                folder.replace(tmp, name)
            except OutputError:
                raise
            except OSError as exc:
                raise _io_error(path, exc) from None
            committed = True
            folder.sync()
        finally:
            if not committed:
                folder.unlink(tmp)
    finally:
        folder.close()


def write_bytes(path: PathLike, data: bytes, *, create_folders: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docs); return the path."""
    with open_atomic(path, create_folders=create_folders) as f:
        try:
            f.write(data)
        except OSError as exc:
            raise _io_error(path, exc) from None
    return Path(os.fspath(path))


def _encode(path: PathLike, text: str, bom: bool) -> bytes:
    try:
        return ("\ufeff" if bom else "").encode("utf-8") + text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(
            path,
            "encoding",
            f"the text cannot be written as UTF-8 ({exc.reason} at position {exc.start}; "
            "文本无法以 UTF-8 写出)",
        ) from None


def write_text(
    path: PathLike, text: str, *, bom: bool = False, create_folders: bool = False
) -> Path:
    """Write ``text`` as UTF-8 (with a byte-order mark if ``bom``) atomically; return the path.

    Line ends are written as they are in ``text``.  Text that is not valid
    Unicode (a lone surrogate) is refused with reason ``encoding`` before any
    file is touched.
    """
    return write_bytes(path, _encode(path, text, bom), create_folders=create_folders)


# =========================================================================== #
# CSV for people


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # noqa: PLR0124 (NaN and NaT: unequal to themselves)
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def _whole(value: Any) -> bool:
    return (
        isinstance(value, numbers.Integral)
        or (isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
        or _missing(value)
    )


def _cell(value: Any, whole_column: bool) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if whole_column else repr(number)
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(str(value))


def csv_bytes(rows: Iterable[Sequence[Any]], *, header: Sequence[str] | None = None) -> bytes:
    """CSV for people, as bytes: UTF-8 with a byte-order mark, CRLF, cells made safe.

    Every text cell (header included) goes through :func:`neutralise`;
    ``None`` and NaN are empty; booleans are ``TRUE``/``FALSE``; dates are
    ISO 8601.  A column whose numbers are all whole (say, counts that became
    floats next to a NaN) is written as integers: ``300``, never ``300.0``;
    other floats are written with all their digits.

    >>> csv_bytes([[1, 2.0, "+1"], [3, float("nan"), "-"]], header=["a", "b", "c"])
    b"\\xef\\xbb\\xbfa,b,c\\r\\n1,2,'+1\\r\\n3,,'-\\r\\n"
    """
    return _encode("<csv>", _csv_text(rows, header), bom=True)


def _csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None) -> str:
    table = [list(r) for r in rows]
    width = max((len(r) for r in table), default=0)
    whole = [all(_whole(r[i]) for r in table if i < len(r)) for i in range(width)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header is not None:
        w.writerow([neutralise(str(h)) for h in header])
    for r in table:
        w.writerow([_cell(v, whole[i]) for i, v in enumerate(r)])
    return buf.getvalue()


def write_csv(
    path: PathLike,
    rows: Iterable[Sequence[Any]],
    *,
    header: Sequence[str] | None = None,
    create_folders: bool = False,
) -> Path:
    """Write :func:`csv_bytes` of ``rows`` to ``path`` atomically; return the path."""
    data = _encode(path, _csv_text(rows, header), bom=True)
    return write_bytes(path, data, create_folders=create_folders)


def frame_rows(df: pd.DataFrame, *, index: bool = False) -> tuple[list[str], list[list[Any]]]:
    """The header and the rows of a DataFrame (with its index as columns if ``index``)."""
    if index:
        df = df.reset_index()
    header = [str(c) for c in df.columns]
    return header, [list(r) for r in df.itertuples(index=False, name=None)]


def write_frame_csv(
    path: PathLike, df: pd.DataFrame, *, index: bool = False, create_folders: bool = False
) -> Path:
    """Write a DataFrame as CSV for people (:func:`csv_bytes`) atomically; return the path."""
    header, rows = frame_rows(df, index=index)
    return write_csv(path, rows, header=header, create_folders=create_folders)
