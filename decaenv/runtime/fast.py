"""Inference graphs of DECA's three networks that compute the same function faster (exact mode) or in bf16.

Exact mode (`precision="fp32"`): every BatchNorm is folded into the convolution (or linear layer) before it,
in float64 then rounded once; the networks run channels-last, without autograd, as a frozen TorchScript
graph (`graph="freeze"`), a `torch.compile`d module (`graph="compile"`) or plain modules (`graph="fused"`).
Codes stay within 1e-6 relative of the eager model (tests/runtime/test_fast_parity.py).

bf16 (`precision="bf16"`): the convolutional trunks run in bfloat16 (weights and activations), the small
linear heads, FLAME, the camera and the renderer stay float32. Worth it on CPUs with AVX512-BF16 or AMX and
on CUDA GPUs (`bf16_support`).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from decaenv.errors import UsageError
from decaenv.runtime.config import GRAPHS, PRECISIONS
from decaenv.runtime.decoders import DetailGenerator
from decaenv.runtime.encoders import ResnetEncoder
from decaenv.runtime.fold import FusedDetail, expect_type, fold_resnet

log = logging.getLogger("decaenv")

#: What `graph="auto"` picks where the packed graph cannot run (not a CPU, or torch without oneDNN): frozen
#: TorchScript — as fast as torch.compile within the noise of docs/BENCHMARKS.md, a third of its build time,
#: and no C++ compiler needed. On a CPU with oneDNN, `auto` is "packed" (decaenv.runtime.fast_packed).
AUTO_GRAPH = "freeze"


def resolve_graph(graph: str, device: torch.device) -> str:
    """The graph `graph` means on `device` ("auto": packed on a oneDNN CPU, else freeze)."""
    from decaenv.runtime.fast_packed import packed_available

    if graph == "auto":
        return "packed" if packed_available(device) else AUTO_GRAPH
    if graph == "packed" and not packed_available(device):
        raise UsageError(
            f"the packed graph needs a CPU device and a torch built with oneDNN (here: {device.type}, "
            f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'})",
            hint="use --graph auto",
        )
    return graph


class FastEncoder(nn.Module):
    """A `ResnetEncoder` with folded BatchNorms, channels-last; the trunk in `dtype`, the MLP head in float32.

    Args:
        trunk: the ResNet-50 to run instead of the folded channels-last module (the packed graph's
            `PackedResNet`); it takes and returns what the folded module does.
    """

    def __init__(self, encoder: ResnetEncoder, dtype: torch.dtype = torch.float32, trunk: Optional[nn.Module] = None):
        super().__init__()
        if trunk is None:
            folded = fold_resnet(encoder.encoder)
            trunk = folded.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]  # stub lacks memory_format
        self.trunk = trunk
        self.head = copy.deepcopy(encoder.layers).eval()
        self.dtype = dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, 224, 224) float32 → (B, outsize) float32."""
        x = images.to(dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        return self.head(self.trunk(x).float())


class FastDetail(nn.Module):
    """`FusedDetail` channels-last, its convolutions in `dtype`; output float32."""

    def __init__(self, generator: DetailGenerator, dtype: torch.dtype = torch.float32):
        super().__init__()
        fused = FusedDetail(generator)
        self.l1 = fused.l1
        self.blocks = fused.blocks.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]  # stub lacks memory_format
        self.init_size, self.out_scale, self.dtype = fused.init_size, fused.out_scale, dtype

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, 181) float32 → uv_z (B, 1, 256, 256) float32."""
        x = self.l1(latent).view(latent.shape[0], -1, self.init_size, self.init_size)
        x = x.to(dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        return (self.blocks(x).float() * self.out_scale).contiguous()


# -- graphs ---------------------------------------------------------------------------------------------
def _freeze(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """Traced and frozen TorchScript (torch 2.9+ marks TorchScript deprecated; it still works and is the fastest
    graph on CPU here: docs/BENCHMARKS.md)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
        return torch.jit.freeze(traced)


def _compile(module: nn.Module, example: torch.Tensor) -> nn.Module:
    # torch.compile of a module returns an `OptimizedModule` (an nn.Module); its stub says any callable
    return expect_type(torch.compile(module.eval(), dynamic=True), nn.Module)


@dataclass
class FastNetworks:
    """The three networks, ready to call (no autograd): `E_flame(images)`, `E_detail(images)`, `D_detail(latent)`."""

    E_flame: nn.Module
    E_detail: nn.Module
    D_detail: nn.Module
    precision: str
    graph: str

    def describe(self) -> str:
        return f"{self.precision}, {self.graph} graphs, BatchNorm folded, channels-last"


def build_fast(deca, precision: str = "fp32", graph: str = "auto") -> FastNetworks:
    """Fast versions of `deca`'s E_flame, E_detail and D_detail (the eager modules are left as they are).

    Args:
        deca: a built `DECA`. precision: "fp32" (exact) or "bf16". graph: "auto", "packed" (oneDNN-packed
        weights and fused post-ops, CPU), "fused" (folded modules, no graph), "freeze" or "compile".
    Raises:
        UsageError: unknown precision or graph, or torch.compile unavailable.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"use {' or '.join(PRECISIONS)}")
    if graph not in GRAPHS:
        raise UsageError(f"unknown graph mode {graph!r}", hint=f"use one of {', '.join(GRAPHS)}")
    device = deca.device
    graph = resolve_graph(graph, device)
    if graph == "compile" and not hasattr(torch, "compile"):
        raise UsageError(f"torch {torch.__version__} has no torch.compile", hint="use the freeze graph")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if graph == "packed":
        from decaenv.runtime.fast_packed import PackedDetail, PackedResNet

        return FastNetworks(
            FastEncoder(deca.E_flame, dtype, PackedResNet(fold_resnet(deca.E_flame.encoder), dtype)),
            FastEncoder(deca.E_detail, dtype, PackedResNet(fold_resnet(deca.E_detail.encoder), dtype)),
            PackedDetail(deca.D_detail, dtype),
            precision,
            graph,
        )
    e_flame: nn.Module = FastEncoder(deca.E_flame, dtype).to(device)
    e_detail: nn.Module = FastEncoder(deca.E_detail, dtype).to(device)
    d_detail: nn.Module = FastDetail(deca.D_detail, dtype).to(device)
    if graph != "fused":
        wrap = _freeze if graph == "freeze" else _compile
        images = torch.zeros(1, 3, deca.image_size, deca.image_size, device=device)
        latent = torch.zeros(1, deca.n_detail + deca.n_cond, device=device)
        e_flame, e_detail, d_detail = wrap(e_flame, images), wrap(e_detail, images), wrap(d_detail, latent)
    return FastNetworks(e_flame, e_detail, d_detail, precision, graph)


#: Items of a run's first batch that `--precision bf16` compares with DECA's eager fp32 networks (`precision_check`
#: in the run's JSON): the eager forwards of a whole batch of 8 cost a 16-image run on two CPUs more than its own
#: bf16 networks (~1 s).
PRECISION_CHECK_ITEMS = 2


def deviation_from_fp32(deca, codedict, items: Optional[int] = None) -> dict:
    """How far a batch's codes (and FLAME vertices) computed with the fast graphs are from DECA's eager fp32
    networks on the same crops: codes max/mean relative (|Δ| / max |fp32| per code), vertices in mm.

    Args:
        items: compare the batch's first `items` only (None: all of it).
    """
    from decaenv.runtime.encoders import split_codes

    if items is not None:
        codedict = {key: value[:items] for key, value in codedict.items()}
    images = codedict["images"]
    with torch.no_grad():
        eager = split_codes(deca.E_flame(images))
        eager["detail"] = deca.E_detail(images)
        verts = deca.geometry(codedict)["verts"]
        eager_verts = deca.geometry(eager)["verts"]
    rel = {}
    for key in ("shape", "tex", "exp", "pose", "cam", "light", "detail"):
        diff = (codedict[key].float() - eager[key]).abs() / eager[key].abs().max().clamp_min(1e-12)
        rel[key] = (float(diff.max()), float(diff.mean()))
    mm = (verts - eager_verts).norm(dim=-1) * 1000.0  # FLAME is in metres
    return {
        "batch": int(images.shape[0]),
        "codes_max_rel": max(v[0] for v in rel.values()),
        "codes_mean_rel": sum(v[1] for v in rel.values()) / len(rel),
        "per_code_max_rel": {k: round(v[0], 6) for k, v in rel.items()},
        "vertices_max_mm": float(mm.max()),
        "vertices_mean_mm": float(mm.mean()),
    }


# -- hardware support for bf16 --------------------------------------------------------------------------
def bf16_support(device: Optional[torch.device] = None, flags: Optional[set] = None) -> Tuple[bool, str]:
    """Whether `--precision bf16` is fast here: (good, one line why)."""
    from decaenv.runtime.hardware import bf16_verdict, cpu_flags

    device = device or torch.device("cpu")
    if device.type == "cuda":
        return bf16_verdict((), [torch.cuda.get_device_capability(device)], [torch.cuda.get_device_name(device)])
    return bf16_verdict(cpu_flags() if flags is None else flags)
