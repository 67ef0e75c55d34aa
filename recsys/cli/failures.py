"""One line for any failure of a ``trendrec`` command: ``failure_line``.

Part of the one ``trendrec`` program: ``recsys.cli`` prints this line on stderr (and in the JSON error
object) and re-exports ``failure_line``; callers import ``recsys.cli``, never this module. A
``TrendrecError`` is its own message; an ``OSError`` a sentence with its errno name, path and what to
do (``OS_ERRORS``); anything else its type and message, as a likely bug.

    python -c "from recsys.cli import failure_line; print(failure_line(OSError(28, 'No space', 'x')))"
"""

from __future__ import annotations

import errno
import os
import re

from pipeline.errors import TrendrecError

OS_ERRORS = {  # errno -> (what happened, what to do)
    errno.ENOSPC: ("no space left on the device", "free some space or give another --store, then run it again"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or give another --store, then run it again"),
    errno.EROFS: ("the file system is read-only", "give a writable --store, or remount it read-write"),
    errno.EFBIG: ("a file would pass the file-size limit", "raise `ulimit -f`, then run it again"),
    errno.EACCES: ("permission denied", "give a --store (or file) this user may write, or fix its owner"),
    errno.EPERM: ("operation not permitted", "give a --store (or file) this user may write, or fix its owner"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EMFILE: ("too many open files", "raise `ulimit -n`, then run it again"),
    errno.EIO: ("an input/output error", "check the disk, then run it again"),
}


OWN_MESSAGES = {  # the start of an OSError's own message -> what to do
    "No usable temporary directory": "none of them took a test file: free some space, set TMPDIR to a writable "
                                     "folder, or raise `ulimit -f`, then run it again",
}


def failure_line(exc: BaseException, store: str | None = None) -> str:
    """One line for any failure: a TrendrecError's own message; an OSError as a sentence with its errno
    name and path (ENOSPC, EROFS, EFBIG...), or its own message when it has one that names no OS error
    (tempfile's); another error whose message names an OS error (TensorFlow's file errors are its own
    types) as that OS error; anything else its type and message, as a likely bug."""
    if isinstance(exc, TrendrecError):
        text = str(exc)
    elif isinstance(exc, OSError):
        code = exc.errno if isinstance(exc.errno, int) else _errno_in(str(exc))
        if not exc.filename and exc.strerror and code and os.strerror(code) not in exc.strerror:
            advice = next((a for start, a in OWN_MESSAGES.items() if exc.strerror.startswith(start)), "see -v")
            text = f"{exc.strerror} ({errno.errorcode.get(code, type(exc).__name__)}): {advice}"
        else:
            text = _os_line(exc, code, store)
    else:
        code = next((c for c in OS_ERRORS if os.strerror(c) in str(exc)), None)
        text = (f"{_os_line(exc, code, store)} ({type(exc).__name__})" if code else
                f"{type(exc).__name__}: {exc} (unexpected; run again with -v for the traceback)")
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= 1000 else line[:997] + "..."


def _os_line(exc: BaseException, code: int | None, store: str | None) -> str:
    """``what (ENAME) at where: what to do`` of an OS failure with errno ``code``."""
    what, advice = OS_ERRORS.get(code, (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, "see -v"))
    name = errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__
    where = getattr(exc, "filename", None) or (f"the store {store}" if store else "the store")
    return f"{what} ({name}) at {where}: {advice}"


def _errno_in(message: str) -> int | None:
    """The errno of an OSError that carries it only in its text, as pyarrow's do: ``[Errno 28] ...``."""
    found = re.search(r"errno (\d+)", message, flags=re.IGNORECASE)
    return int(found.group(1)) if found else None
