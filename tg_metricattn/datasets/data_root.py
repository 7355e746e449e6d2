"""Where real data lives, and how to work on a private copy of it.

Real data is found through the environment variable ``TGMA_DATA``: a folder laid out so
that each PyTorch Geometric / OGB class reads its data from a sub-folder without
downloading (``Planetoid/Cora/raw``, ``Amazon/Photo/raw``, ``ogb/ogbg_molbace`` ...).
Processing writes a ``processed/`` folder next to ``raw/``; a shared copy may be
read-only, so tests, the demo and the experiments first copy the dataset they need into
a folder of their own with :func:`copy_dataset`.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tg_metricattn.atomic_files import atomic_write

__all__ = ["DATA_ENV_VAR", "DataNotFoundError", "copy_dataset", "family_root", "get_data_root"]

#: Name of the environment variable that points to the folder of real data.
DATA_ENV_VAR = "TGMA_DATA"


class DataNotFoundError(FileNotFoundError):
    """The data of a dataset is not where it was looked for (the message says where and what to do)."""


# Folders written by processing; never copied, so that a copy is processed afresh.
_SKIPPED_NAMES = frozenset({"processed", "__pycache__"})


def get_data_root(required: bool = False) -> Path | None:
    """Return the folder named by ``$TGMA_DATA``, or ``None`` when it is unset or missing.

    Args:
        required: raise :class:`FileNotFoundError` instead of returning ``None``.
    """
    value = os.environ.get(DATA_ENV_VAR, "").strip()
    if value and Path(value).expanduser().is_dir():
        return Path(value).expanduser().resolve()
    if required:
        if not value:
            raise FileNotFoundError(
                f"The environment variable {DATA_ENV_VAR} is not set. Set it to the folder that holds "
                "the real data (for example `export TGMA_DATA=../shared/data`), or pass an explicit `root`."
            )
        raise FileNotFoundError(f"{DATA_ENV_VAR}={value!r} is not an existing folder.")
    return None


def copy_dataset(
    src: str | os.PathLike, dst_root: str | os.PathLike, *, data_root: str | os.PathLike | None = None
) -> Path:
    """Copy one dataset folder into ``dst_root`` (skipping ``processed/``) and return the copy.

    A relative ``src`` (for example ``"Planetoid/Cora"``) is taken inside ``data_root``
    (default: ``$TGMA_DATA``) and keeps its relative path under ``dst_root``, so a loader
    rooted at ``dst_root`` finds it where it would find the original: after
    ``copy_dataset("Planetoid/Cora", tmp)``, ``load_node_dataset("Cora", tmp)`` works.
    An absolute ``src`` is copied to ``dst_root / src.name``.

    Only regular files inside the dataset folder are copied. A symbolic link to a regular
    file that (resolved) lies inside the dataset folder is copied as that file's content;
    any other link (one that leaves the folder, or points to a folder) and anything that is
    not a regular file (a device, a FIFO, a socket) is refused before it is opened. Each file
    is written atomically (see :mod:`tg_metricattn.atomic_files`), without its permission
    bits, so a copy of a read-only folder is writable and never holds a partial file.

    An existing copy is brought up to date: a copied file whose size no longer matches its
    source is copied again, files and folders the source no longer has are removed, and
    when anything changed the copy's ``processed/`` folders (made from the old files) are
    removed.

    Raises:
        FileNotFoundError: ``src`` does not exist (the message names the full path).
        ValueError: the dataset folder holds a link or a file that is refused (named).
    """
    src_path = Path(src)
    if src_path.is_absolute():
        source, target = src_path, Path(dst_root) / src_path.name
    else:
        base = Path(data_root) if data_root is not None else get_data_root(required=True)
        assert base is not None
        source, target = base / src_path, Path(dst_root) / src_path
    if not source.is_dir():
        raise FileNotFoundError(f"Dataset folder {str(source)!r} does not exist; check the path and {DATA_ENV_VAR}.")
    files, folders = _dataset_files(source)  # every path checked before anything is read or written
    changed = False
    for relative in sorted(folders):  # parents first; a file in the copy where the source now has a folder goes
        out_dir = target / relative
        if relative != Path(".") and os.path.lexists(out_dir) and (out_dir.is_symlink() or not out_dir.is_dir()):
            out_dir.unlink()
            changed = True
        out_dir.mkdir(parents=True, exist_ok=True)
    for relative, in_file in files.items():
        out_file = target / relative
        if out_file.is_dir() and not out_file.is_symlink():
            shutil.rmtree(out_file)  # a folder in the copy where the source now has a file
            changed = True
        if out_file.is_file() and out_file.stat().st_size == in_file.stat().st_size:
            continue
        changed |= os.path.lexists(out_file)
        _copy_regular_file(in_file, out_file)
    changed |= _drop_extra(target, set(files), folders)
    if changed:  # the source changed since it was copied: what was processed from it is stale
        for processed in [p for p in target.rglob("processed") if p.is_dir()]:
            shutil.rmtree(processed)
    return target


def _dataset_files(source: Path) -> tuple[dict[Path, Path], set[Path]]:
    """``({relative path: file to read}, {relative folders})`` of ``source``; a refused entry raises ``ValueError``."""
    inside = source.resolve()
    files: dict[Path, Path] = {}
    folders: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_NAMES)
        folders.add(Path(dirpath).relative_to(source))
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if stat.S_ISLNK(mode):
                resolved = Path(os.path.realpath(path))
                if resolved.is_dir():
                    raise ValueError(
                        f"{str(path)!r} is a link to a folder ({str(resolved)!r}); a dataset folder is copied "
                        "without following links to folders. Replace the link by the folder's files."
                    )
                if not resolved.is_relative_to(inside):
                    raise ValueError(
                        f"{str(path)!r} is a link to {str(resolved)!r}, outside the dataset folder "
                        f"{str(inside)!r}; it is not copied. Replace the link by the file itself, or remove it."
                    )
                mode = os.stat(resolved).st_mode if resolved.exists() else 0
                if not stat.S_ISREG(mode):
                    raise ValueError(f"{str(path)!r} is a link to {str(resolved)!r}, which is not a regular file.")
                files[path.relative_to(source)] = resolved
                continue
            if not stat.S_ISREG(mode):
                raise ValueError(
                    f"{str(path)!r} is not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'a special file')}); "
                    "a dataset folder may hold regular files and folders only. Remove it."
                )
            files[path.relative_to(source)] = path
    return files, folders


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _copy_regular_file(in_file: Path, out_file: Path) -> None:
    """Copy ``in_file`` (a regular file, opened without following a link) to ``out_file`` atomically."""
    fd = os.open(in_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since it was checked
            raise ValueError(f"{str(in_file)!r} is no longer a regular file; it is not copied.")
        atomic_write(out_file, lambda out: shutil.copyfileobj(handle, out, 2**20))


def _drop_extra(target: Path, files: set[Path], folders: set[Path]) -> bool:
    """Remove what ``target`` holds beyond ``files`` and ``folders`` (``processed/`` aside); whether any was."""
    dropped = False
    for dirpath, dirnames, filenames in os.walk(target, topdown=True):
        here = Path(dirpath).relative_to(target)
        for name in sorted(dirnames):
            if name in _SKIPPED_NAMES:
                dirnames.remove(name)
            elif here / name not in folders:
                path = Path(dirpath) / name
                path.unlink() if path.is_symlink() else shutil.rmtree(path)
                dirnames.remove(name)
                dropped = True
        for name in filenames:
            if here / name not in files:
                (Path(dirpath) / name).unlink()
                dropped = True
    return dropped


def family_root(root: str | os.PathLike, folder: str) -> Path:
    """The data root that holds ``folder`` (e.g. ``Planetoid``, ``ogb``), from either layout.

    ``root`` laid out like ``$TGMA_DATA`` holds ``<root>/<folder>/...``; given the PyG way,
    ``root`` is the family folder itself (``Planetoid(root="data/Planetoid", name="Cora")``,
    OGB's ``root="data/ogb"``). A root named ``folder`` without a ``folder`` inside is read
    as the latter, and its parent is returned.
    """
    root = Path(root)
    if root.name == folder and not (root / folder).is_dir():
        return root.parent
    return root
