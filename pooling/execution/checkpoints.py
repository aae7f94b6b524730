"""Finished tasks kept on disk, so an interrupted run resumes without losing
them: one file per task, named by a key that identifies its inputs, written
atomically (temporary file, fsync, rename). Pickle keeps the objects exact, so
a resumed run gives the same result as an uninterrupted one; the files are the
user's own outputs, read back only from the folder they asked for."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from pooling.errors import InputError


class Checkpoints:
    """Task results under `folder`, by key."""

    SUFFIX = ".pickle"

    def __init__(self, folder: str | os.PathLike, resume: bool = False):
        self.folder = Path(folder)
        self.resume = resume

    def load(self, key: str) -> Any | None:
        """The saved result of `key`, or None (not resuming, not saved, or unreadable)."""
        if not self.resume:
            return None
        path = self.folder / f"{key}{self.SUFFIX}"
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None   # a damaged or foreign file: recompute the task

    def save(self, key: str, value: Any) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        except OSError as exc:
            raise InputError(f"cannot write checkpoints in {self.folder}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / f"{key}{self.SUFFIX}")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
