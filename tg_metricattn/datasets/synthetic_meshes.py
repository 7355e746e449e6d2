"""Procedural articulated figures for mesh segmentation: the offline default mesh dataset.

Each figure is made of capsules (cylinders capped by half-spheres) joined at shoulders,
elbows, hips and knees: a torso, a head, two upper arms, two forearms, two thighs and two
shins, with random proportions and random joint angles. The part a vertex belongs to is
its label. Part types are the classes (left and right share a class):

    0 head, 1 torso, 2 upper arm, 3 forearm, 4 thigh, 5 shin

so a model has to tell parts apart from their shape and their place in the figure
(``hks`` and ``xyz`` features, as for the real meshes), not from the side. The capsules
overlap at the joints and are not welded: a figure has several components, as real
meshes do. Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed
gives the same meshes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch_geometric.data import Data, InMemoryDataset

from tg_metricattn.datasets.mesh_sample import DEFAULT_EIGENPAIRS, mesh_to_data

__all__ = ["PART_NAMES", "SyntheticMeshSegmentation", "capsule_mesh", "make_figure"]

PART_NAMES = ("head", "torso", "upper_arm", "forearm", "thigh", "shin")


def capsule_mesh(radius: float, length: float, rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed capsule along +z from z=0 to z=length: ``(vertices [V, 3], faces [F, 3])``.

    ``rings`` latitude rings per half-sphere cap (at least 2), ``segments`` around the axis.
    """
    if rings < 2 or segments < 3:
        raise ValueError(f"rings must be >= 2 and segments >= 3, got {rings} and {segments}.")
    theta = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring_pos = []
    for i in range(1, rings + 1):  # bottom cap, pole excluded, equator included
        phi = -np.pi / 2 + (np.pi / 2) * i / rings
        ring_pos.append((np.cos(phi) * radius, np.sin(phi) * radius))
    body = max(1, round(length / (2 * np.pi * radius / segments)))
    for i in range(1, body):
        ring_pos.append((radius, length * i / body - 0.0))
    top = [(np.cos(phi) * radius, np.sin(phi) * radius + length) for phi in np.pi / 2 * np.arange(0, rings) / rings]
    ring_pos += top
    vertices = [np.array([[0.0, 0.0, -radius]])]
    for r, z in ring_pos:
        vertices.append(np.stack([r * np.cos(theta), r * np.sin(theta), np.full(segments, z)], axis=1))
    vertices.append(np.array([[0.0, 0.0, length + radius]]))
    verts = np.concatenate(vertices)
    n_rings = len(ring_pos)
    faces = []
    ring = lambda i: 1 + i * segments + (np.arange(segments) % segments)  # noqa: E731
    nxt = lambda a: np.roll(a, -1)  # noqa: E731
    r0 = ring(0)
    faces.append(np.stack([np.zeros(segments, dtype=int), nxt(r0), r0], axis=1))
    for i in range(n_rings - 1):
        a, b = ring(i), ring(i + 1)
        faces.append(np.stack([a, nxt(a), nxt(b)], axis=1))
        faces.append(np.stack([a, nxt(b), b], axis=1))
    last, top_pole = ring(n_rings - 1), verts.shape[0] - 1
    faces.append(np.stack([last, nxt(last), np.full(segments, top_pole)], axis=1))
    return verts, np.concatenate(faces).astype(np.int64)


def _rotation_to(direction: np.ndarray) -> np.ndarray:
    """A rotation taking +z to the unit vector ``direction``."""
    z = np.array([0.0, 0.0, 1.0])
    d = direction / np.linalg.norm(direction)
    v, c = np.cross(z, d), float(z @ d)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _direction(rng: np.random.Generator, base: np.ndarray, spread: float) -> np.ndarray:
    d = base / np.linalg.norm(base) + rng.normal(scale=spread, size=3)
    return d / np.linalg.norm(d)


def make_figure(rng: np.random.Generator, resolution: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random figure: ``(vertices [V, 3], faces [F, 3], vertex labels [V])`` (see the module doc)."""
    s = rng.uniform(0.85, 1.15, size=8)  # proportions
    torso_len, torso_r = 1.0 * s[0], 0.32 * s[1]
    parts: list[tuple[int, np.ndarray, np.ndarray, float, float]] = []  # label, start, direction, length, radius
    parts.append((1, np.zeros(3), np.array([0.0, 0.0, 1.0]), torso_len, torso_r))
    neck = np.array([0.0, 0.0, torso_len + torso_r * 0.9])
    parts.append((0, neck, _direction(rng, np.array([0.0, 0.0, 1.0]), 0.15), 0.12 * s[2], 0.24 * s[2]))
    arm_len, arm_r = 0.55 * s[3], 0.09 * s[4]
    leg_len, leg_r = 0.7 * s[5], 0.12 * s[6]
    for side in (-1.0, 1.0):
        shoulder = np.array([side * (torso_r + arm_r), 0.0, torso_len * 0.95])
        upper = _direction(rng, np.array([side * rng.uniform(0.1, 1.5), rng.uniform(-0.8, 0.8), -1.0]), 0.2)
        elbow = shoulder + upper * arm_len
        fore = _direction(rng, upper + rng.normal(scale=0.8, size=3), 0.1)
        parts += [(2, shoulder, upper, arm_len, arm_r), (3, elbow, fore, arm_len * 0.9, arm_r * 0.85)]
        hip = np.array([side * torso_r * 0.55, 0.0, -torso_r * 0.5])
        thigh = _direction(rng, np.array([side * rng.uniform(0.0, 0.5), rng.uniform(-0.7, 0.7), -1.0]), 0.1)
        knee = hip + thigh * leg_len
        shin = _direction(rng, np.array([thigh[0] * 0.3, thigh[1] - rng.uniform(0.0, 0.9), -1.0]), 0.1)
        parts += [(4, hip, thigh, leg_len, leg_r), (5, knee, shin, leg_len * 0.95, leg_r * 0.8)]
    vertices, faces, labels, offset = [], [], [], 0
    for label, start, direction, length, radius in parts:
        v, f = capsule_mesh(radius, length, rings=max(2, resolution // 3), segments=resolution)
        v = v @ _rotation_to(direction).T + start
        vertices.append(v)
        faces.append(f + offset)
        labels.append(np.full(v.shape[0], label, dtype=np.int64))
        offset += v.shape[0]
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(labels)


class SyntheticMeshSegmentation(InMemoryDataset):
    """``num_meshes`` random articulated figures with per-vertex part labels (6 classes).

    Same sample format as the real mesh datasets (``pos``, ``face``, ``edge_index``, ``x``,
    ``y``, ``name``, and the operator ``mass``, ``evals``, ``evecs``). Nothing is written
    to disk; generation with the default resolution (about 3k vertices per figure, 128
    eigenpairs) takes about a second per mesh.

    Args:
        num_meshes: how many figures.
        seed: the seed of everything random; mesh ``i`` is the same for every ``num_meshes``.
        resolution: segments around each capsule (vertices grow about quadratically).
        features, hks_eigenpairs, hks_times, eigenpairs: as for the real mesh datasets.
        transform: applied on access (e.g. :class:`~tg_metricattn.datasets.RandomRotation`).
    """

    def __init__(
        self,
        num_meshes: int = 16,
        seed: int = 0,
        resolution: int = 16,
        features: Sequence[str] = ("xyz", "hks"),
        hks_eigenpairs: int = 32,
        hks_times: int = 16,
        transform: Callable[[Data], Data] | None = None,
        eigenpairs: int = DEFAULT_EIGENPAIRS,
    ) -> None:
        if num_meshes < 1:
            raise ValueError(f"num_meshes must be >= 1, got {num_meshes}.")
        if resolution < 6:
            raise ValueError(f"resolution must be >= 6, got {resolution}.")
        super().__init__(None, transform)
        self.seed, self.features = int(seed), tuple(features)
        data_list = []
        for i in range(num_meshes):
            rng = np.random.default_rng([self.seed, i])
            vertices, faces, labels = make_figure(rng, resolution)
            data_list.append(
                mesh_to_data(
                    vertices,
                    faces,
                    labels,
                    features=self.features,
                    hks_eigenpairs=hks_eigenpairs,
                    hks_times=hks_times,
                    eigenpairs=eigenpairs,
                    name=f"figure_{self.seed}_{i}",
                )
            )
        self.data, self.slices = self.collate(data_list)

    @property
    def num_classes(self) -> int:
        return len(PART_NAMES)
