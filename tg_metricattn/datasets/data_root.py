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
from pathlib import Path

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

    Files are copied without their permission bits, so a copy of a read-only folder is
    writable. An existing copy is completed; a copied file whose size no longer matches its
    source is copied again, and the copy's ``processed/`` folders (made from the old files)
    are removed.

    Raises:
        FileNotFoundError: ``src`` does not exist (the message names the full path).
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
    changed = False
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_NAMES)
        out_dir = target / Path(dirpath).relative_to(source)
        out_dir.mkdir(parents=True, exist_ok=True)
        for filename in filenames:
            in_file, out_file = Path(dirpath) / filename, out_dir / filename
            if out_file.exists() and out_file.stat().st_size == in_file.stat().st_size:
                continue
            changed |= out_file.exists()
            shutil.copyfile(in_file, out_file)
    if changed:  # the source changed since it was copied: what was processed from it is stale
        for processed in [p for p in target.rglob("processed") if p.is_dir()]:
            shutil.rmtree(processed)
    return target


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
