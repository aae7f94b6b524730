"""Finished tasks kept on disk, so an interrupted run resumes without losing
them: one file per task, named by a key that identifies its inputs, written
atomically (temporary file, fsync, rename). Pickle keeps the objects exact, so
a resumed run gives the same result as an uninterrupted one; the files are the
user's own outputs, read back only from the folder they asked for."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from pooling.execution.atomic import write_bytes_atomic


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
        write_bytes_atomic(self.folder / f"{key}{self.SUFFIX}",
                           pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
