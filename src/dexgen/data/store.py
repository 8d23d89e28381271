"""The HDF5 episode store: an append-only, resumable writer, a reader that sees only complete episodes, and a checker.

File layout (``dexgen.data.schema`` documents every field)::

    /                     attrs: schema_version, schema (JSON), control_hz, primitives, command, seed, revision,
                                 created, history (JSON list of the runs that wrote to it), and any collector metadata
    /steps/<field>        (N, *shape) one row per control step, chunked, gzip-compressed, resizable (the fields of
                          the file's schema version: files of an older version than this code writes are read, and
                          lack the fields added since; only files of the current version are appended to)
    /episodes/<field>     (E,) one row per episode (object_name, wrist)
    /episode_ends         (E,) int64, exclusive end row of each episode: the commit point
    /stats/               normalization statistics (written by ``dexgen.data.windows.compute_stats``; they record
                          the episode count they were computed over, so appending makes them stale, not wrong)

Commit protocol: ``append_episode`` writes an episode's rows past the committed end, flushes, and only then extends
``episode_ends`` and flushes again. Readers use rows ``[0, episode_ends[-1])`` only, so a partly written episode is
never visible (nor a trailing ``episode_ends`` entry still holding its fill value -1).

Crash safety: HDF5 has no journal, and a plain writer killed between flushes can leave pointers to space that the
file on disk does not have yet (seen in testing). So the writer appends in HDF5's single-writer / multiple-reader
(SWMR) mode, which orders every metadata write so that the file on disk is consistent at every moment, and freed
space is never reused (file-space strategy "none"). A file whose writer was killed can then still be read (in SWMR
mode, showing its last flush), and ``EpisodeWriter(..., resume=True)`` rebuilds it into a clean file holding exactly
its committed episodes before appending. Tested by SIGKILLing writers at random moments (``tests/test_store.py``).
A power cut may still lose or damage what the operating system had not yet written. Other processes can read the
file while a writer appends; ``<path>.lock`` keeps a second writer out.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dexgen.data.schema import (
    CONTROL_HZ,
    EPISODE_FIELDS,
    PRIMITIVES,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    STEP_FIELDS,
    Field,
    describe,
    row_dtype,
    step_fields,
)

NAME_BYTES = 64
"""Longest object or wrist name, bytes (stored fixed-length: no shared string heap to rewrite while appending)."""

_BLOCK_ROWS = 1 << 16
"""Rows read at a time when scanning or copying a whole field."""

LIBVER = ("v110", "latest")
"""HDF5 format bounds: v110 (HDF5 >= 1.10) is the oldest format with single-writer / multiple-reader mode."""

LOCK_WAIT_S = 30.0
"""How long a writer waits for readers of a closed file to finish before giving up, seconds."""

_RESERVED_ATTRS = ("schema_version", "schema", "control_hz", "primitives", "command", "seed", "revision", "created",
                   "history")  # fmt: skip
"""Root attributes the writer sets itself (``meta`` may not)."""


class DatasetError(ValueError):
    """A dataset file that is missing, unreadable or does not follow the schema; the message is one line."""


def _h5py():
    import h5py

    return h5py


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__


def _lock(path: Path):
    """An exclusive lock on ``<path>.lock`` held by the returned open file (released by ``_unlock``, or when the
    process dies); a DatasetError if another writer holds it. ``_unlock`` removes the file, so a lock taken on a
    file that was removed meanwhile is taken again on the file of that name now: two writers never hold locks on
    two files of one name."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.with_name(path.name + ".lock")
    while True:
        handle = open(name, "a")  # held open for the writer's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DatasetError(f"{path}: another writer has it open") from None
        try:
            now = os.stat(name)
        except FileNotFoundError:
            now = None
        held = os.fstat(handle.fileno())
        if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
            return handle
        handle.close()


def _unlock(handle) -> None:
    """Remove the lock file of ``_lock`` and release the lock, in that order (see ``_lock``)."""
    Path(handle.name).unlink(missing_ok=True)
    handle.close()


def _locked(e: OSError) -> bool:
    """Whether h5py could not open a file because another process holds HDF5's lock on it (a reader)."""
    return "unable to lock file" in str(e)


def _open_error(path: Path, e: OSError) -> str:
    """One line saying why h5py could not open a file."""
    reason = _one_line(e)
    if _locked(e):
        return f"{path}: locked by another process that has it open: {reason}"
    return f"{path}: not a readable HDF5 file (truncated or corrupt?): {reason}"


def _validate_steps(steps: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Check one episode's per-step arrays against the schema; return them cast to their stored dtypes, and n."""
    missing = [k for k in STEP_FIELDS if k not in steps]
    extra = [k for k in steps if k not in STEP_FIELDS]
    if missing or extra:
        raise DatasetError(f"episode fields differ from the schema: missing {missing}, unexpected {extra}")
    n = len(np.asarray(steps["joint_pos"]))
    if n < 1:
        raise DatasetError("an episode needs at least one step")
    out = {}
    for name, f in STEP_FIELDS.items():
        a = np.asarray(steps[name])
        if a.shape != (n, *f.shape):
            raise DatasetError(f"episode field {name!r} has shape {a.shape}, expected {(n, *f.shape)}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise DatasetError(f"episode field {name!r} has non-finite values")
        if name == "primitive_id" and (a.min() < 0 or a.max() >= len(PRIMITIVES)):
            raise DatasetError(f"primitive_id out of range [0, {len(PRIMITIVES)})")
        out[name] = a.astype(row_dtype(f), copy=False)
    return out, n


def _create_file(path: Path, attrs: Mapping, *, chunk_rows: int) -> None:
    """Write an empty dataset file with every field and the given root attributes: under a temporary name, then
    renamed into place, so that ``path`` never names a half-made file."""
    h5py = _h5py()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".creating")
    with h5py.File(tmp, "w", libver=LIBVER, fs_strategy="none") as f:
        f.attrs.update(attrs)
        steps = f.create_group("steps")
        for name, fld in STEP_FIELDS.items():
            ds = steps.create_dataset(name, shape=(0, *fld.shape), maxshape=(None, *fld.shape), dtype=fld.dtype,
                                      chunks=(chunk_rows, *fld.shape), compression="gzip", compression_opts=4,
                                      shuffle=fld.shape != ())  # fmt: skip
            ds.attrs.update({"unit": fld.unit, "doc": fld.doc, "analysis_only": fld.analysis_only})
        episodes = f.create_group("episodes")
        for name, fld in EPISODE_FIELDS.items():
            ds = episodes.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(256,),
                                         dtype=h5py.string_dtype("utf-8", NAME_BYTES))  # fmt: skip
            ds.attrs.update({"unit": fld.unit, "doc": fld.doc})
        ends = f.create_dataset("episode_ends", shape=(0,), maxshape=(None,), dtype="int64", chunks=(1024,),
                                fillvalue=-1)  # fmt: skip
        ends.attrs["doc"] = "exclusive end row of each episode in steps/; rows past the last end are not data"
    os.replace(tmp, path)


def _left_open(e: OSError) -> bool:
    """Whether h5py refused a file because its superblock says a writer has it open (or was killed holding it)."""
    return "already open for write" in str(e) or "consistency flags" in str(e)


def unclosed(path: str | Path) -> bool:
    """Whether the file's superblock says a writer has it open, or was killed with it open (HDF5's status flags,
    byte 11 of a version 2 or 3 superblock at the start of the file); False for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] >= 2 and head[11] != 0


def _open_for_reading(path: Path):
    """The file opened read-only. A file a writer has open (or was killed with open) is read in HDF5's
    single-writer / multiple-reader (SWMR) mode, which shows a consistent state, the writer's last flush, and takes
    no file lock; any other file is opened plainly, with HDF5's shared lock while it is read (a writer that starts
    meanwhile waits for it)."""
    h5py = _h5py()
    if unclosed(path):
        return h5py.File(path, "r", libver=LIBVER, swmr=True, locking=False)
    return h5py.File(path, "r")


def writer_active(path: str | Path) -> bool:
    """Whether an ``EpisodeWriter`` holds ``path`` open right now (it holds ``<path>.lock``)."""
    import fcntl

    path = Path(os.path.realpath(path))  # as the writer locks it
    lock = path.with_name(path.name + ".lock")
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _rebuild(path: Path) -> None:
    """Rewrite a file whose writer was killed into a clean, closed file holding its committed episodes (HDF5 can
    reopen such a file only for reading). The original stays in place until the copy is complete."""
    with _open_for_reading(path) as src:
        ends, problems = _committed_state(src, writable=True)
        if problems:
            raise DatasetError(f"{path}: cannot resume: {'; '.join(problems)}")
        rows = int(ends[-1]) if len(ends) else 0
        tmp = path.with_name(path.name + ".rebuilding")
        _create_file(tmp, dict(src.attrs), chunk_rows=src["steps"]["joint_pos"].chunks[0])
        with _h5py().File(tmp, "r+", libver=LIBVER) as dst:
            for group, n in (("steps", rows), ("episodes", len(ends))):
                for name in src[group]:
                    d = dst[group][name]
                    d.resize(n, axis=0)
                    for i in range(0, n, _BLOCK_ROWS):
                        d[i : i + _BLOCK_ROWS] = src[group][name][i : min(n, i + _BLOCK_ROWS)]
            dst["episode_ends"].resize(len(ends), axis=0)
            dst["episode_ends"][:] = ends
    os.replace(tmp, path)


class EpisodeWriter:
    """Appends complete episodes to an HDF5 dataset, one commit per episode.

    ``EpisodeWriter(path, command=..., seed=...)`` creates a new file (an error if it exists);
    ``resume=True`` reopens an existing one (or creates it), discarding any partly written episode; a file whose
    writer was killed is first rebuilt from its committed episodes (a copy: seconds per GB).
    ``meta`` adds attributes (e.g. the collector's action scale or expert names) on creation.
    ``chunk_rows`` is the HDF5 chunk length in rows: each append rewrites a partly filled chunk per field, and as
    freed space is never reused (see the module docstring), the file carries up to about one chunk per field per
    episode of dead space (about 30 % with 256 rows and 400-step episodes).
    ``command`` and ``seed`` are recorded as attributes on creation, and every opening in ``history``.
    One writer at a time: a second gets a ``DatasetError`` while the first holds ``<path>.lock``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        command: str = "",
        seed: int = 0,
        resume: bool = False,
        meta: Mapping[str, str | int | float] | None = None,
        chunk_rows: int = 256,
    ):
        self.path = Path(os.path.realpath(path))  # one file, one lock, whatever link names it
        if set(_RESERVED_ATTRS) & set(meta or {}):
            raise DatasetError(f"meta may not set {sorted(set(_RESERVED_ATTRS) & set(meta))}: the writer records them")
        if self.path.exists() and not resume:
            raise DatasetError(f"{self.path} exists; resume to append to it, or remove it")
        self._lock = _lock(self.path)
        try:
            self._open(command=command, seed=seed, meta=meta or {}, chunk_rows=chunk_rows)
        except BaseException:
            _unlock(self._lock)
            raise

    def _open(self, *, command: str, seed: int, meta: Mapping, chunk_rows: int) -> None:
        h5py = _h5py()
        if not self.path.exists():
            attrs = {"schema_version": SCHEMA_VERSION, "schema": json.dumps(describe()), "control_hz": CONTROL_HZ,
                     "primitives": json.dumps(list(PRIMITIVES)), "command": command, "seed": seed,
                     "revision": _revision(), "created": _now(), "history": "[]", **meta}  # fmt: skip
            _create_file(self.path, attrs, chunk_rows=chunk_rows)
        rebuilt, deadline = False, time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                self.file = h5py.File(self.path, "r+", libver=LIBVER)
                break
            except OSError as e:
                if _left_open(e) and not rebuilt:
                    try:
                        _rebuild(self.path)  # we hold <path>.lock, so its writer is gone: killed, not running
                    except OSError as e2:
                        raise DatasetError(f"{self.path}: cannot resume, unreadable: {_one_line(e2)}") from None
                    rebuilt = True
                elif _locked(e) and time.monotonic() < deadline:
                    time.sleep(0.1)  # a reader has it open
                else:
                    raise DatasetError(_open_error(self.path, e)) from None
        try:
            self.file.swmr_mode = True  # from here on the file on disk is consistent at every moment
            self._recover()
            history = json.loads(self.file.attrs.get("history", "[]"))
            history.append({"command": command, "seed": seed, "revision": _revision(), "opened": _now(),
                            "episodes_at_open": self.num_episodes, "rebuilt": rebuilt})  # fmt: skip
            self.file.attrs["history"] = json.dumps(history)
            self.file.flush()
        except OSError as e:
            self.file.close()
            raise DatasetError(f"{self.path}: cannot resume, unreadable: {_one_line(e)}") from None
        except BaseException:
            self.file.close()
            raise

    def _recover(self) -> None:
        """Check the layout, drop an uncommitted trailing end, cut every field back to the committed rows."""
        f = self.file
        ends, problems = _committed_state(f, writable=True)
        if problems:
            raise DatasetError(f"{self.path}: cannot resume: {'; '.join(problems)}")
        valid = len(ends)
        committed = int(ends[valid - 1]) if valid else 0
        for k in STEP_FIELDS:
            f["steps"][k].resize(committed, axis=0)
        for k in EPISODE_FIELDS:
            f["episodes"][k].resize(valid, axis=0)
        f["episode_ends"].resize(valid, axis=0)
        self._ends = [int(e) for e in ends[:valid]]

    @property
    def num_episodes(self) -> int:
        """Committed episodes."""
        return len(self._ends)

    @property
    def num_transitions(self) -> int:
        """Committed steps (rows)."""
        return self._ends[-1] if self._ends else 0

    def append_episode(self, steps: Mapping[str, np.ndarray], *, object_name: str, wrist: str) -> int:
        """Append one finished episode and commit it; return its index.

        ``steps`` maps every name of ``schema.STEP_FIELDS`` to an array of shape (n, *field.shape), n >= 1 steps
        (e.g. ``fingertip_pos``: (n, 4, 3) metres, palm frame); values are cast to the stored dtypes and must be
        finite. ``object_name`` and ``wrist`` describe the whole episode.
        """
        arrays, n = _validate_steps(steps)
        for label, value in (("object_name", object_name), ("wrist", wrist)):
            if not value or len(str(value).encode()) > NAME_BYTES:
                raise DatasetError(f"{label} must be 1 to {NAME_BYTES} bytes long, got {value!r}")
        f, start, e = self.file, self.num_transitions, self.num_episodes
        for name, a in arrays.items():
            ds = f["steps"][name]
            ds.resize(start + n, axis=0)
            ds[start:] = a
        for name, value in (("object_name", object_name), ("wrist", wrist)):
            ds = f["episodes"][name]
            ds.resize(e + 1, axis=0)
            ds[e] = str(value).encode()
        f.flush()
        ends = f["episode_ends"]
        ends.resize(e + 1, axis=0)
        ends[e] = start + n  # the commit point
        f.flush()
        self._ends.append(start + n)
        return e

    def close(self) -> None:
        """Close the file (every appended episode is already committed) and release the lock."""
        if self.file.id.valid:
            self.file.close()
        if not self._lock.closed:
            _unlock(self._lock)

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _layout_problems(f, version: int) -> list[str]:
    """What is missing or misshapen among an open file's fields (empty if they follow schema ``version``)."""
    problems = []
    for group, table in (("steps", step_fields(version)), ("episodes", EPISODE_FIELDS)):
        for name, fld in table.items():
            key = f"{group}/{name}"
            if key not in f:
                problems.append(f"missing field {key}")
            elif f[key].shape[1:] != fld.shape:
                problems.append(f"field {key} has rows of shape {f[key].shape[1:]}, expected {fld.shape}")
            elif fld.dtype != "str" and f[key].dtype != np.dtype(fld.dtype):
                problems.append(f"field {key} has dtype {f[key].dtype}, expected {fld.dtype}")
    return problems


def _committed_state(f, *, writable: bool = False) -> tuple[np.ndarray, list[str]]:
    """The committed ``episode_ends`` of an open file, (E,) int64, and what is wrong with the file's layout or
    episode bounds (empty if nothing); with ``writable``, also a file this code cannot append to (an older schema
    version).

    ``episode_ends`` is read before anything else of the fields: a reader in SWMR mode sees each object as it was
    when first read, and while a writer appends, the fields can only have grown after the commit point was read.
    """
    none = np.zeros(0, dtype=np.int64)
    version = f.attrs.get("schema_version")
    if version is None:
        return none, ["not a dexgen dataset (no schema_version attribute)"]
    version = int(version)
    if version not in READABLE_VERSIONS:
        return none, [f"schema version {version}, this code reads versions {', '.join(map(str, READABLE_VERSIONS))}"]
    if writable and version != SCHEMA_VERSION:
        return none, [f"schema version {version} lacks fields this code writes (version {SCHEMA_VERSION}): it can be "
                      "read, not appended to; collect into a new file"]  # fmt: skip
    if "episode_ends" not in f or f["episode_ends"].ndim != 1:
        return none, ["missing or misshapen episode_ends"]
    ends = _committed_ends(f["episode_ends"][:])
    problems = _layout_problems(f, version)
    if problems:
        return none, problems
    rows = min(f["steps"][k].shape[0] for k in step_fields(version))
    problems = _ends_problems(ends, rows)
    problems += [f"episodes/{k} has fewer rows than episode_ends" for k in EPISODE_FIELDS
                 if f["episodes"][k].shape[0] < len(ends)]  # fmt: skip
    return ends, problems


def _committed_ends(raw: np.ndarray) -> np.ndarray:
    """``episode_ends`` without trailing fill values (-1): an end whose row count never reached the file because
    the writer was killed between extending ``episode_ends`` and writing it; that episode was not committed."""
    raw = np.asarray(raw, dtype=np.int64)
    valid = len(raw)
    while valid and raw[valid - 1] == -1:
        valid -= 1
    return raw[:valid]


def _ends_problems(ends: np.ndarray, rows: int) -> list[str]:
    """What is wrong with episode_ends given the number of rows every step field holds."""
    if len(ends) == 0:
        return []
    problems = []
    if ends[0] < 1 or np.any(np.diff(ends) < 1):
        problems.append("episode_ends is not strictly increasing from at least 1")
    if ends[-1] > rows:
        problems.append(f"episode_ends reaches row {int(ends[-1])} but the step fields hold {rows}")
    return problems


class DatasetReader:
    """Read access to the complete episodes of a dataset (rows past the last committed episode are invisible).

    ``reader["fingertip_pos"]`` is (N, 4, 3) metres, palm frame; ``reader.episode(i)`` is one episode's rows.
    Opening checks the layout and ``episode_ends`` and raises a one-line ``DatasetError`` if they are broken.
    The file is read in HDF5's single-writer / multiple-reader mode: while a writer appends, a reader sees the
    episodes committed when it opened the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such file")
        try:
            self.file = _open_for_reading(self.path)
        except OSError as e:
            raise DatasetError(_open_error(self.path, e)) from None
        try:
            self.episode_ends, problems = _committed_state(self.file)
        except OSError as e:
            problems = [f"unreadable: {_one_line(e)}"]
        if problems:
            self.file.close()
            raise DatasetError(f"{self.path}: {'; '.join(problems)}")
        self.version = int(self.file.attrs["schema_version"])
        """The file's schema version (``schema.READABLE_VERSIONS``)."""
        self.fields = step_fields(self.version)
        """The per-step fields this file holds (those of its schema version)."""

    def has(self, name: str) -> bool:
        """Whether the file holds per-step field ``name`` (a field added after its schema version is absent)."""
        return name in self.fields

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_transitions(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def episode_starts(self) -> np.ndarray:
        """First row of each episode, (E,) int64."""
        return np.concatenate(([0], self.episode_ends[:-1])).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        """Steps in each episode, (E,) int64."""
        return np.diff(self.episode_ends, prepend=0)

    @property
    def attrs(self) -> dict:
        """File attributes (command, seed, revision, created, control_hz, schema_version, ...), as Python values."""
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.file.attrs.items()}

    @property
    def schema(self) -> dict:
        """The schema description stored in the file (see ``schema.parse_description``)."""
        from dexgen.data.schema import parse_description

        return parse_description(self.file.attrs["schema"])

    def episode_slice(self, i: int) -> slice:
        """Rows of episode i (negative counts from the end)."""
        i = range(self.num_episodes)[i]
        return slice(int(self.episode_ends[i - 1]) if i else 0, int(self.episode_ends[i]))

    def read(self, name: str, rows: slice | None = None) -> np.ndarray:
        """Rows of a step field (default all committed rows), shape (n, *field.shape); a DatasetError if unreadable."""
        if name not in STEP_FIELDS:
            raise DatasetError(f"unknown field {name!r}; expected one of {', '.join(STEP_FIELDS)}")
        if name not in self.fields:
            raise DatasetError(f"{self.path} has no field {name!r}: its schema version {self.version} predates it "
                               f"(added in version {STEP_FIELDS[name].since}); collect the data again")  # fmt: skip
        start, stop, _ = (rows or slice(None)).indices(self.num_transitions)
        try:
            return self.file["steps"][name][start:stop]
        except OSError as e:
            raise DatasetError(f"{self.path}: field {name} unreadable: {_one_line(e)}") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Every step field of episode i (those of the file's schema version)."""
        rows = self.episode_slice(i)
        return {name: self.read(name, rows) for name in self.fields}

    def episode_info(self, name: str) -> list[str]:
        """A per-episode field (object_name or wrist) for every committed episode."""
        if name not in EPISODE_FIELDS:
            raise DatasetError(f"unknown episode field {name!r}; expected one of {', '.join(EPISODE_FIELDS)}")
        values = self.file["episodes"][name][: self.num_episodes]
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]

    def close(self) -> None:
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(path: str | Path) -> DatasetReader:
    """Open a dataset for reading (use as a context manager); a one-line ``DatasetError`` if it is broken."""
    return DatasetReader(path)


def _field_problems(reader: DatasetReader, name: str, fld: Field) -> list[str]:
    """Scan one step field in blocks: readable, finite, ids in range."""
    n = reader.num_transitions
    bad = 0
    try:
        for start in range(0, n, _BLOCK_ROWS):
            a = reader.file["steps"][name][start : min(n, start + _BLOCK_ROWS)]
            if a.dtype.kind == "f":
                bad += int(np.sum(~np.isfinite(a)))
            elif name == "primitive_id" and len(a) and (a.min() < 0 or a.max() >= len(PRIMITIVES)):
                return [f"primitive_id out of range [0, {len(PRIMITIVES)})"]
    except OSError as e:
        return [f"field {name} unreadable: {_one_line(e)}"]
    return [f"field {name} has {bad} non-finite values"] if bad else []


def check_dataset(path: str | Path) -> dict:
    """Validate a dataset file: layout and shapes, episode bounds, every value readable and finite, ids in range,
    ``dropped`` only on an episode's last step. Never raises for a bad file: returns ``ok``, ``episodes``,
    ``transitions``, ``path``, ``writer_active`` (a writer is appending: the episodes committed so far were checked),
    ``unclosed`` (a writer has the file open or was killed with it open; resuming rebuilds it) and ``problems``
    (one-line strings, empty when ok)."""
    out = {"ok": False, "path": str(path), "episodes": 0, "transitions": 0, "writer_active": False,
           "unclosed": False, "problems": []}  # fmt: skip
    try:
        reader = DatasetReader(path)
    except DatasetError as e:
        out["problems"].append(str(e))
        return out
    with reader:
        out["episodes"], out["transitions"] = reader.num_episodes, reader.num_transitions
        out["writer_active"], out["unclosed"] = writer_active(path), unclosed(path)
        for name, fld in reader.fields.items():
            out["problems"] += _field_problems(reader, name, fld)
        if not any("dropped" in p for p in out["problems"]):
            drops = np.flatnonzero(reader.read("dropped"))
            if not np.all(np.isin(drops, reader.episode_ends - 1)):
                out["problems"].append("dropped is set on a step that is not its episode's last")
        for name in EPISODE_FIELDS:
            try:
                reader.episode_info(name)
            except OSError as e:
                out["problems"].append(f"episodes/{name} unreadable: {_one_line(e)}")
    out["ok"] = not out["problems"]
    return out


def _revision() -> str:
    from dexgen.provenance import revision

    return revision()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
