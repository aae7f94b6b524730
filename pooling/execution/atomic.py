"""Files written atomically: the one writer behind every output, checkpoint and
sweep table, so a reader (or a resumed run) never sees a partial file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pooling.errors import InputError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, content: bytes) -> None:
    """Write bytes so readers never see a partial file: a temporary file in
    the same folder, fsync, then rename over the target. The file gets the
    usual mode (0666 less the umask, 0644 typically), not mkstemp's 0600. A
    failure to write (full disk, read-only place) is an InputError naming the
    file; nothing is left behind."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
