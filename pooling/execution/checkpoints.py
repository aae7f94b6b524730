"""Finished tasks kept on disk, so an interrupted run resumes without losing
them: one JSON file per task, named by a key that identifies its inputs,
written atomically (temporary file, fsync, rename).

A checkpoint is data, never code: plain JSON (floats written with their
shortest round-trip text, so they read back exactly), in an envelope carrying
the format, its version, the key it was written under, what it holds and the
SHA-256 of its payload. `load` returns the payload only when all of these
match; anything else (a damaged, truncated or foreign file) is reported on
stderr, naming the file, and the task is done again. The envelope only catches
accidents: whoever can write the folder can also forge the hash, so the caller
verifies what a payload claims (pooling.optimise.block_records re-prices a
stored plan) before it trusts it. Files of the former pickle format are never
opened; the user is told once that they were ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from pooling.execution.atomic import write_bytes_atomic

FORMAT = "pooling-checkpoint"
VERSION = 1
"""Version of the envelope and of the payloads written by this code; a file of
another version is not read (its task is done again)."""

SUFFIX = ".json"
LEGACY_SUFFIX = ".pickle"
"""Checkpoints before version 1 were pickles: never loaded (unpickling runs code)."""

MAX_CHECKPOINT_BYTES = 64 * 2**20
"""A block's or a cell's checkpoint is a few kilobytes to a few megabytes (a
plan with its pools); a larger file is not one of ours and is not read."""


def tell(message: str) -> None:
    """A line on stderr for the user (resume counts, files ignored or rejected)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):   # stderr closed: the run goes on
        pass


def payload_digest(payload: Any) -> str:
    """SHA-256 of a payload's canonical JSON text (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (the message says why)."""


def _no_constant(name: str) -> Any:
    raise CheckpointError(f"holds the non-JSON number {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise CheckpointError("has a key twice in one object")
    return data


class Checkpoints:
    """Task results under `folder`, by key, as JSON payloads of one `kind`
    ("block", "cell"). `resume` False: nothing is read, results are still
    written. Counts what it reused and rejected, for the run's summary."""

    def __init__(self, folder: str | os.PathLike, resume: bool = False, kind: str = "task"):
        self.folder = Path(folder)
        self.resume = resume
        self.kind = kind
        self.reused = 0
        self.rejected = 0
        self._legacy_told = False

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def load(self, key: str) -> Any | None:
        """The payload saved under `key`, or None: not resuming, not saved,
        or not usable (then said on stderr, naming the file)."""
        if not self.resume:
            return None
        self._tell_legacy()
        path = self.path(key)
        try:
            if not stat.S_ISREG(path.stat().st_mode):   # a FIFO or a device would block or never end
                raise CheckpointError("is not a regular file")
            with path.open("rb") as handle:
                raw = handle.read(MAX_CHECKPOINT_BYTES + 1)
            if len(raw) > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"is larger than {MAX_CHECKPOINT_BYTES:,} bytes")
        except FileNotFoundError:
            return None
        except CheckpointError as exc:
            self.reject(key, f"it {exc}")
            return None
        except OSError as exc:
            self.reject(key, f"it cannot be read ({exc.strerror or exc})")
            return None
        try:
            return self._payload(raw, key)
        except CheckpointError as exc:
            self.reject(key, f"it {exc}")
            return None

    def _payload(self, raw: bytes, key: str) -> Any:
        try:
            data = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise CheckpointError("is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"is not valid JSON ({exc.msg} at line {exc.lineno}; truncated?)") from None
        except RecursionError:
            raise CheckpointError("is nested too deeply to be a checkpoint") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"is not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise CheckpointError(f"has format version {data.get('version')!r}, this pooling reads {VERSION}")
        if data.get("key") != key or data.get("kind") != self.kind:
            raise CheckpointError(f"was written for {data.get('kind')!r} {data.get('key')!r}, "
                                  f"not {self.kind} {key}")
        if "payload" not in data or data.get("payload_sha256") != payload_digest(data["payload"]):
            raise CheckpointError("does not match its payload_sha256 (damaged)")
        return data["payload"]

    def save(self, key: str, payload: Any) -> None:
        """Write `payload` (JSON data: dicts, lists, str, int, float, bool,
        None) under `key`, atomically. A payload JSON cannot hold (a NaN, say)
        is not kept: its task is done again on resume."""
        try:
            envelope = {"format": FORMAT, "version": VERSION, "kind": self.kind, "key": key,
                        "payload_sha256": payload_digest(payload), "payload": payload}
            text = json.dumps(envelope, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            tell(f"warning: {self.kind} {key} not kept in {self.folder}: {exc}; a resumed run does it again")
            return
        write_bytes_atomic(self.path(key), text.encode("utf-8") + b"\n")

    def reject(self, key: str, reason: str) -> None:
        """Say that the checkpoint of `key` is not used, and why; count it."""
        self.rejected += 1
        tell(f"warning: {self.path(key)}: {reason}; not used, its {self.kind} is done again")

    def _tell_legacy(self) -> None:
        """Once per run: old pickle checkpoints in the folder were ignored."""
        if self._legacy_told:
            return
        self._legacy_told = True
        try:
            legacy = sorted(self.folder.glob(f"*{LEGACY_SUFFIX}"))
        except OSError:
            return
        if legacy:
            tell(f"warning: ignored {len(legacy)} checkpoint file(s) of the old pickle format in {self.folder} "
                 f"(never opened: a checkpoint is data, and unpickling a file runs code); their work is done "
                 f"again. Remove them with: rm {self.folder}/*{LEGACY_SUFFIX}")

