"""Exceptions the package raises on purpose.

`InputError` is the one a user sees: bad instance, spec or plan files. Its
message always names the file, the county (where there is one) and the field,
and says what was expected and what was found. The CLI turns it into exit
code 2 without a traceback.
"""

from __future__ import annotations


class PoolingError(Exception):
    """Base class for errors raised deliberately by `pooling`."""


class InputError(PoolingError):
    """Invalid user input (instance, spec, plan or command-line arguments)."""


class NumericsError(PoolingError):
    """A numerical routine could not reach its stated accuracy."""


class FormatWarning(UserWarning):
    """A file read by an older format version's rules where they differ from
    the current ones (data.formats): the reading is right for the file as
    written, and the message says how to state the current meaning instead.
    The CLI prints it as ``warning: ...`` on stderr."""
