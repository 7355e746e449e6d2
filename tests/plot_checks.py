"""Checks that a saved figure shows what it should: a PNG whose line colours are there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colors, image, rcParams


def drawn_series(path: Path, count: int) -> list[bool]:
    """For each of the first ``count`` colours of matplotlib's cycle: is some pixel of ``path`` that colour?"""
    assert path.read_bytes()[:4] == b"\x89PNG", f"{path} is not a PNG"
    pixels = image.imread(str(path))[..., :3].reshape(-1, 3)
    cycle = rcParams["axes.prop_cycle"].by_key()["color"][:count]
    return [bool((np.abs(pixels - np.array(colors.to_rgb(c))).max(axis=1) < 0.02).any()) for c in cycle]
