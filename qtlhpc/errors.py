"""Exceptions that carry a message meant for the user.

Every error raised because of a user's input or config derives from :class:`QtlhpcError`; the CLI
prints its message (no traceback) and exits with status 2.  Internal invariants use ``assert``.
"""

from __future__ import annotations


class QtlhpcError(Exception):
    """Base class of all errors whose message is written for the user."""


class InputError(QtlhpcError, ValueError):
    """A problem in an input file: names the file and, where known, the line and column.

    ``line`` is 1-based as an editor shows it; ``column`` is a column name or 1-based index.
    """

    def __init__(self, message: str, *, file=None, line=None, column=None, hint=None):
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        self.hint = hint
        where = []
        if self.file is not None:
            where.append(self.file)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        text = (", ".join(where) + ": " if where else "") + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class ConfigError(QtlhpcError, ValueError):
    """A problem in a TOML config or a command-line option."""


class IncompleteResultError(QtlhpcError):
    """A results file (or one stage in it) was not completed; its data must not be used."""


class BackendUnavailableError(QtlhpcError, ImportError):
    """An optional backend (MPI, parallel HDF5, PETSc, SLEPc) was asked for but is not installed."""


class StaleResultError(IncompleteResultError):
    """A stage whose inputs were recomputed after it ran: its results must not be used until it reruns."""


def did_you_mean(name, choices, cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""
