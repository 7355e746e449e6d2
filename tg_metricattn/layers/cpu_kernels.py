"""C++ CPU kernels (``tg_metricattn/csrc``), compiled once per machine and loaded as ``torch.ops.tg_metricattn_cpu``.

The sources are built by :func:`torch.utils.cpp_extension.load` (a C++ compiler with OpenMP
and ninja are needed) into torch's extension folder (``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``; one folder per version of the sources) on first use;
``python -m tg_metricattn.layers.cpu_kernels`` builds them ahead, as ``make venv`` does.
Where the build is impossible, or with ``TGMA_CPU_KERNELS=0``, :func:`available` is ``False``
and every caller takes its torch implementation: the same results, slower. Nothing here is
used on other devices.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

_CSRC = Path(__file__).resolve().parent.parent / "csrc"
SOURCES = sorted(str(path) for path in _CSRC.glob("*.cpp"))
#: the environment variable that turns the C++ kernels off (value ``0``)
SWITCH = "TGMA_CPU_KERNELS"

_loaded: dict[str, bool] = {}


@torch.compiler.assume_constant_result
def available() -> bool:
    """Whether the C++ CPU kernels are loaded (built on the first call; ``False`` if that fails or is switched off)."""
    if "ok" not in _loaded:
        _loaded["ok"] = _load()
    return _loaded["ok"]


@contextlib.contextmanager
def switched_off() -> Iterator[None]:
    """Inside the block every caller takes its torch kernels (to compare the two in one process)."""
    before = _loaded.get("ok")
    _loaded["ok"] = False
    try:
        yield
    finally:
        if before is None:
            del _loaded["ok"]
        else:
            _loaded["ok"] = before


def applies_to(tensor: Tensor) -> bool:
    """Whether the C++ kernels serve ``tensor``: a CPU tensor, with the kernels available."""
    return tensor.device.type == "cpu" and available()


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(_CSRC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _load() -> bool:
    if os.environ.get(SWITCH, "1") == "0":
        return False
    try:
        from torch.utils.cpp_extension import load

        load(
            # one build folder per version of the sources (headers included): checkouts of two versions on one
            # machine neither rebuild each other's library nor replace it under a running process
            name=f"tg_metricattn_cpu_{_sources_digest()}",
            sources=SOURCES,
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as error:  # no compiler, no ninja, a failed build: the torch kernels remain
        warnings.warn(
            f"tg_metricattn: the C++ CPU kernels could not be built ({type(error).__name__}: {error}); the torch "
            f"kernels are used instead (same results, slower). Install a C++ compiler and ninja, or set {SWITCH}=0 "
            "to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


if __name__ == "__main__":
    print("C++ CPU kernels:", "built and loaded" if available() else "not available (torch kernels in use)")
