"""Heat flow on a mesh in its truncated Laplace–Beltrami eigenbasis, one learnable time per channel.

With the stiffness ``L``, lumped mass ``M = diag(m)`` and the ``K`` smallest eigenpairs
``L φ_k = λ_k M φ_k``, ``Φ = [φ_1 .. φ_K]``, ``Φᵀ M Φ = I`` (stored on every mesh sample as
``mass``, ``evals``, ``evecs``), heat diffusion of channel ``c`` for time ``t_c`` is

    exp(-t_c Δ) x_c  ≈  Φ · diag(exp(-λ_k t_c)) · Φᵀ M x_c

(exact for ``K`` = all vertices: then it is ``expm(-t_c M⁻¹ L) x_c``). It reaches the whole
surface in one step at the cost of two ``[V, K] x [K, C]`` products (DiffusionNet's spectral
acceleration, Sharp et al. 2022). The part of ``x`` outside the span of ``Φ`` (frequencies
above ``λ_K``) is dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SpectralHeatDiffusion"]


class SpectralHeatDiffusion(nn.Module):
    r"""Per-channel heat diffusion ``exp(-t_c Δ) x`` on a mesh (see the module docstring).

    Args:
        channels: number of channels ``C`` of ``x``; each has its own time ``t_c``.
        init_time: initial time of every channel (default ``0.0``: the identity on the
            span of ``Φ``, as DiffusionNet starts).
        learn_time: learn the times (default ``True``); otherwise they stay ``init_time``.

    Times are kept non-negative by projection: each forward pass in training mode first
    clamps them at 0 (projected gradient descent, so a time that reaches 0 can grow again).

    Shapes:
        - input: ``x`` ``[V, C]``, ``mass`` ``[V]``, ``evals`` ``[K]`` (or ``[B * K]`` / ``[B, K]``
          for a batch of ``B`` meshes with ``batch``), ``evecs`` ``[V, K]``, ``batch`` ``[V]``
          (integer mesh id of each vertex, sorted as PyG batches them or not) or ``None`` for
          one mesh; ``evals`` row ``b`` belongs to mesh id ``b``. All float inputs have the
          layer's dtype (outside ``torch.autocast``).
        - output: ``[V, C]``.
    """

    def __init__(self, channels: int, init_time: float = 0.0, learn_time: bool = True) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}.")
        if not (init_time >= 0.0 and init_time < float("inf")):
            raise ValueError(f"init_time must be a finite number >= 0, got {init_time!r}.")
        self.channels, self.init_time = channels, float(init_time)
        self.diffusion_time = nn.Parameter(torch.empty(channels), requires_grad=learn_time)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every channel's time to ``init_time``."""
        nn.init.constant_(self.diffusion_time, self.init_time)

    @property
    def time(self) -> Tensor:
        """The diffusion times ``t`` ``[C]`` (non-negative)."""
        return self.diffusion_time.clamp(min=0.0)

    def forward(self, x: Tensor, mass: Tensor, evals: Tensor, evecs: Tensor, batch: Tensor | None = None) -> Tensor:
        """``Φ diag(exp(-λ t_c)) Φᵀ M x`` per channel and mesh (see the class docstring for shapes).

        Vertex ``v`` diffuses on mesh ``batch[v]`` with the eigenvalues ``evals[batch[v]]``;
        ``batch`` need not be sorted (the vertices of a mesh are gathered by their id).
        """
        if x.dim() != 2 or x.size(1) != self.channels:
            raise ValueError(f"x must have shape [V, {self.channels}], got {list(x.shape)}.")
        num_vertices, k = x.size(0), evecs.size(-1)
        if evecs.dim() != 2 or evecs.size(0) != num_vertices or mass.shape != (num_vertices,):
            raise ValueError(
                f"mass must be [V] and evecs [V, K] with V = {num_vertices} (the rows of x); "
                f"got mass {list(mass.shape)}, evecs {list(evecs.shape)}."
            )
        dtype = self.diffusion_time.dtype
        if not torch.is_autocast_enabled(x.device.type) and any(t.dtype != dtype for t in (x, mass, evals, evecs)):
            raise ValueError(
                f"x, mass, evals and evecs must have the dtype of the layer ({dtype}); got x {x.dtype}, mass "
                f"{mass.dtype}, evals {evals.dtype}, evecs {evecs.dtype}. Convert them (e.g. .to({dtype})) or the "
                "layer (.double() / .float())."
            )
        if self.training and self.diffusion_time.requires_grad:
            with torch.no_grad():
                self.diffusion_time.clamp_(min=0.0)
        time = self.time
        if batch is None:
            if evals.numel() != k:
                raise ValueError(f"evals must have K = {k} entries (the columns of evecs), got {evals.numel()}.")
            return self._diffuse(x, mass, evals.reshape(k), evecs, time)
        if (
            batch.shape != (num_vertices,)
            or batch.is_floating_point()
            or batch.is_complex()
            or batch.dtype == torch.bool
        ):
            raise ValueError(
                f"batch must be a 1-D integer tensor of V = {num_vertices} mesh ids (one per row of x), "
                f"got shape {list(batch.shape)} of {batch.dtype}."
            )
        if num_vertices and int(batch.min()) < 0:
            raise ValueError(f"batch must hold mesh ids >= 0, got {int(batch.min())}.")
        counts = torch.bincount(batch.long())
        meshes = counts.numel()
        if evals.shape not in ((meshes, k), (meshes * k,)):
            raise ValueError(
                f"evals must be [B={meshes}, K={k}] or B*K={meshes * k} values for the B meshes of batch "
                f"(ids 0..{meshes - 1}) and the K columns of evecs, got shape {list(evals.shape)}."
            )
        order = None
        if num_vertices > 1 and bool((batch[1:] < batch[:-1]).any()):  # unsorted: gather each mesh's vertices
            order = torch.argsort(batch, stable=True)
            x, mass, evecs = x[order], mass[order], evecs[order]
        sizes = counts.tolist()
        parts = zip(x.split(sizes), mass.split(sizes), evals.reshape(-1, k), evecs.split(sizes), strict=True)
        out = torch.cat([self._diffuse(xb, mb, lb, vb, time) for xb, mb, lb, vb in parts])
        if order is None:
            return out
        return torch.empty_like(out).index_copy_(0, order, out)  # back to the order of x

    @staticmethod
    def _diffuse(x: Tensor, mass: Tensor, evals: Tensor, evecs: Tensor, time: Tensor) -> Tensor:
        spectrum = evecs.transpose(0, 1) @ (mass.unsqueeze(1) * x)  # Φᵀ M x: [K, C]
        decay = torch.exp(-evals.unsqueeze(1) * time.unsqueeze(0))  # exp(-λ_k t_c): [K, C]
        return evecs @ (decay * spectrum)

    def __repr__(self) -> str:
        learn = "" if self.diffusion_time.requires_grad else ", learn_time=False"
        return f"{self.__class__.__name__}({self.channels}, init_time={self.init_time:g}{learn})"
