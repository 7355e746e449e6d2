"""Reading files under a data root without ever running code from them.

PyG's ``InMemoryDataset`` and ogb save processed data as pickles that name PyG classes
(``Data``, its storages), and both read some files with full unpickling, which runs any
code a file carries: PyG 2.8 reads ``processed/pre_transform.pt`` and ``pre_filter.pt``
with ``torch.load(weights_only=False)`` and, when ``torch.load(weights_only=True)``
refuses a ``processed/*.pt``, retries it with ``weights_only=False``; ogb 1.3.6 calls a
bare ``torch.load`` (full unpickling when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set);
raw files of some PyG datasets (the Planetoid ``ind.*`` files among them) are pickles
read with ``pickle.load`` or ``np.load(allow_pickle=True)``.

Guarantee: while a :func:`pyg_safe_load` block is open, no file is unpickled with a
full unpickler by these libraries, whatever the caller asks for:

- ``torch.load`` and ``torch_geometric.io.fs.torch_load`` always use
  ``weights_only=True`` (PyG's plain data containers, :data:`PYG_SAFE_GLOBALS`, are
  allowed for the block); a file that needs more is refused with :class:`UnsafeFileError`
  naming it, never retried with full unpickling;
- ``pickle.load`` and ``pickle.loads`` (hence ``np.load`` and ``pd.read_pickle``)
  resolve only :data:`PICKLE_SAFE_GLOBALS` (numpy arrays, scipy sparse matrices, builtin
  containers); every other global, and every failure while unpickling, raises
  :class:`UnsafeFileError`, which is a ``RuntimeError`` so that no caller catching
  ``ValueError``/``TypeError`` falls back to another unpickler.

The replacements are process-wide while a block is open (nested and concurrent blocks
share one counter; the originals come back when the last block closes). Code that bound
a loader before the block (``from pickle import load``) or unpickles with a
``pickle.Unpickler`` of its own is not covered; PyG 2.8, ogb 1.3.6, numpy and pandas call
the functions above through their modules.

:func:`open_dataset_safely` is what the dataset loaders use: it constructs a dataset in
such a block, and when the refused file is in a ``processed/`` folder under the data root
it moves the file aside (``<name>.unsafe``, with a :class:`UnsafeFileWarning`) and
constructs again, so PyG rebuilds it from ``raw/``. A refused file elsewhere (a raw file)
raises :class:`UnsafeFileError` naming it. We never set ``weights_only=False`` or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import io
import os
import pickle
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import fsspec
import torch
import torch_geometric.io.fs as pyg_fs
from torch_geometric.data import Data
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

__all__ = [
    "PICKLE_SAFE_GLOBALS",
    "PYG_SAFE_GLOBALS",
    "UnsafeFileError",
    "UnsafeFileWarning",
    "open_dataset_safely",
    "pyg_safe_load",
]

T = TypeVar("T")

#: The classes a processed PyG/OGB file pickles besides tensors and builtins.
PYG_SAFE_GLOBALS: tuple[type, ...] = (Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage)

_SPARSE_MODULES = ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
#: ``(module, name)`` of the only globals ``pickle.load`` may resolve inside :func:`pyg_safe_load`:
#: data containers that run no code of the file when rebuilt.
PICKLE_SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in ("list", "dict", "set", "frozenset", "tuple", "bytearray", "complex", "slice")]
    + [("collections", n) for n in ("OrderedDict", "defaultdict", "Counter")]
    + [("_codecs", "encode")]
    + [
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
    ]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [
        (f"scipy.sparse.{prefix}{module}", f"{module}_{kind}")
        for prefix in ("", "_")
        for module in _SPARSE_MODULES
        for kind in ("matrix", "array")
    ]
)


class UnsafeFileError(RuntimeError):
    """A file could not be read without full unpickling (or is damaged), so it was not read.

    ``path`` is the file (``None`` when the reader was given no name), ``reason`` what was refused.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason.rstrip(".")
        where = "A file" if path is None else f"{str(path)!r}"
        super().__init__(
            f"{where} was not read: {self.reason}. Files under a data root are read only as tensors and plain data "
            "(never with full unpickling, which would run code from the file). If it is a processed file, "
            "delete it to have it rebuilt from raw/; otherwise replace it with the original data."
        )


class UnsafeFileWarning(UserWarning):
    """A processed file was refused by the safe loader and moved aside to be rebuilt."""


def _torch_refusal(error: Exception) -> str:
    """The first line of torch's explanation of a refused load."""
    text = str(error).split("WeightsUnpickler error:")[-1].strip()
    line = (text.splitlines() or [type(error).__name__])[0]
    return line.split(" Please use `torch.serialization.add_safe_globals")[0]  # not advice to allow it


_torch_load_original = torch.serialization.load


def _strict_torch_load(
    f: Any, map_location: Any = None, pickle_module: Any = None, *, weights_only: Any = None, **kwargs: Any
) -> Any:
    """``torch.load`` with ``weights_only=True`` whatever is passed; a refusal raises :class:`UnsafeFileError`."""
    mmap = kwargs.get("mmap")
    path = f if isinstance(f, str | os.PathLike) else getattr(f, "path", getattr(f, "name", None))
    try:
        return _torch_load_original(f, map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(path if isinstance(path, str | os.PathLike) else None, _torch_refusal(error)) from None


def _strict_fs_torch_load(path: str, map_location: Any = None) -> Any:
    """``torch_geometric.io.fs.torch_load`` without its fallback to ``weights_only=False``."""
    with fsspec.open(path, "rb") as f:
        try:
            return _torch_load_original(f, map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            raise UnsafeFileError(path, _torch_refusal(error)) from None


_Unpickler = pickle.Unpickler


class _DataUnpickler(_Unpickler):
    """A ``pickle.Unpickler`` resolving only :data:`PICKLE_SAFE_GLOBALS`; any failure is an :class:`UnsafeFileError`."""

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        name = getattr(file, "name", None)
        self._path = name if isinstance(name, str | os.PathLike) else None

    def find_class(self, module: str, name: str) -> Any:
        key = _compat_pickle.NAME_MAPPING.get((module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        if (module, name) not in PICKLE_SAFE_GLOBALS and key not in PICKLE_SAFE_GLOBALS:
            raise UnsafeFileError(self._path, f"its pickle names {module}.{name}, which is not a plain data class")
        return super().find_class(module, name)

    def load(self) -> Any:
        try:
            return super().load()
        except UnsafeFileError:
            raise
        except Exception as error:  # any failure: a caller must not retry with another unpickler
            raise UnsafeFileError(self._path, f"{type(error).__name__}: {error}") from None


def _restricted_pickle_load(file: IO[bytes], **kwargs: Any) -> Any:
    return _DataUnpickler(file, **kwargs).load()


def _restricted_pickle_loads(data: bytes, /, **kwargs: Any) -> Any:
    return _DataUnpickler(io.BytesIO(data), **kwargs).load()


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (torch, "load", _strict_torch_load),
    (pyg_fs, "torch_load", _strict_fs_torch_load),
    (pickle, "load", _restricted_pickle_load),
    (pickle, "loads", _restricted_pickle_loads),
)
_lock = threading.Lock()
_depth = 0
_saved: list[Any] = []


@contextlib.contextmanager
def _strict_loaders() -> Iterator[None]:
    """Replace the loaders of :data:`_PATCHES` until the last open block closes."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = [getattr(owner, attr) for owner, attr, _ in _PATCHES]
            for owner, attr, strict in _PATCHES:
                setattr(owner, attr, strict)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (owner, attr, _), original in zip(_PATCHES, _saved, strict=True):
                    setattr(owner, attr, original)


@contextlib.contextmanager
def pyg_safe_load() -> Iterator[None]:
    """Inside this block, nothing is unpickled beyond tensors and plain data (see the module docstring).

    ``torch.load`` reads PyG ``Data`` objects with ``weights_only=True``; a file that needs
    more raises :class:`UnsafeFileError`. Only the PyG classes not yet on torch's allow-list
    are added, and only those are removed on exit: PyG allows ``Data`` globally when
    imported, and that must survive the block.
    """
    allowed = set(torch.serialization.get_safe_globals())
    with _strict_loaders(), torch.serialization.safe_globals([c for c in PYG_SAFE_GLOBALS if c not in allowed]):
        yield


def _is_processed_file(path: Path, root: Path) -> bool:
    """``path`` (its folder resolved, a link itself not followed) is in a ``processed/`` folder under ``root``."""
    return path.parent.name == "processed" and path.parent.is_relative_to(root) and os.path.lexists(path)


def open_dataset_safely(open_dataset: Callable[[], T], root: str | os.PathLike) -> T:
    """``open_dataset()`` inside :func:`pyg_safe_load`, rebuilding refused processed files.

    When a file in a ``processed/`` folder under ``root`` is refused, it is renamed to
    ``<name>.unsafe`` (an :class:`UnsafeFileWarning` says so) and ``open_dataset()`` runs
    again, so the dataset class rebuilds it from its raw files; each file is moved at most
    once. Any other refused file (or a rebuilt file refused again) raises
    :class:`UnsafeFileError` naming it. ``open_dataset`` must construct the dataset from
    scratch each time it is called (a PyG dataset class, or a function calling
    ``InMemoryDataset.__init__`` and ``load``).
    """
    root_path = Path(root).resolve()
    moved: set[Path] = set()
    while True:
        try:
            with pyg_safe_load():
                return open_dataset()
        except UnsafeFileError as error:
            path = None if error.path is None else error.path.parent.resolve() / error.path.name
            if path is None or path in moved or not _is_processed_file(path, root_path):
                raise
            aside = path.with_name(path.name + ".unsafe")
            os.replace(path, aside)
            moved.add(path)
            warnings.warn(
                f"{str(path)!r} could not be read safely ({error.reason}); moved it to {aside.name!r} and "
                "rebuilding it from the raw files.",
                UnsafeFileWarning,
                stacklevel=2,
            )
