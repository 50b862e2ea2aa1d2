"""oneDNN-packed CPU graphs of DECA's networks: the exact-mode "packed" graph (`--graph packed`, what `auto`
picks on a CPU whose torch has oneDNN).

Same function as the folded channels-last modules of `decaenv.runtime.fast`, bit for bit on the CPUs measured
(tests/runtime/test_fast_parity.py), with less memory traffic around the convolutions:
- each weight is reordered once into oneDNN's blocked layout (eager torch reorders every weight on every
  call);
- ReLU / LeakyReLU run as the convolution's post-op, and a bottleneck's residual add + ReLU as the last 1×1
  convolution's in-place sum post-op (no separate passes over the activations).

The activations stay plain channels-last tensors, so the convolution kernels (and their summation order) are the
ones the channels-last modules use; only the reorder and the elementwise passes go away.
"""

from __future__ import annotations

import functools
import logging
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from decaenv.runtime.decoders import DetailGenerator
from decaenv.runtime.fold import FusedDetail, expect_type
from decaenv.runtime.resnet import Bottleneck, ResNet50

_POINTWISE = ("relu", "leaky_relu", "none")
#: The detail decoder's largest activation per chunk of images (`PackedDetail`): half of glibc's largest
#: dynamic mmap threshold (32 MiB), so that every activation is served from the heap, not mapped per call.
CHUNK_BYTES = 16 * 2**20
#: An encoder's largest activation per chunk of images (`PackedResNet`). The two encoders run side by side
#: (`encoder_pair`) and share the last-level cache; at batch 8 each layer-1 activation is 25.7 MB in fp32, so
#: both streamed theirs through memory. In chunks within this budget (fp32: 2 images, bf16: 4) both encoders
#: took 33.6-34.6 instead of 34.9-35.8 ms per image (fp32; bf16 17.3-17.9 instead of 18.0-18.7), the same
#: numbers (docs/BENCHMARKS.md).
ENCODER_CHUNK_BYTES = 8 * 2**20
#: The encoder's late blocks whose activations for the whole batch fit here run on the whole batch at once
#: (`PackedResNet`): fp32 layer 4 (3.2 MB at batch 8; its weights, 60 MB a network, are then read once per batch
#: instead of once per chunk), bf16 layers 3 and 4. Both encoders side by side, fp32: 3-4 % less time per image
#: (bf16 ~1.5 %), the same numbers; fp32 layer 3 (6.4 MB) was slower on the whole batch (docs/BENCHMARKS.md).
WHOLE_BATCH_BYTES = 4 * 2**20
log = logging.getLogger("decaenv")


def packed_available(device: torch.device) -> bool:
    """Whether the packed graph can run here: a CPU device, a torch built with oneDNN's fused ops, and those
    ops computing what `nn.Conv2d` + ReLU computes on a small probe (checked once per process)."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    ops = torch.ops.mkldnn
    if not all(hasattr(ops, name) for name in ("_convolution_pointwise", "_reorder_convolution_weight")):
        return False
    return _probe()


@functools.lru_cache(maxsize=1)
def _probe() -> bool:
    """One packed 3×3 convolution with its ReLU against the module pair (False on an error or a mismatch)."""
    generator = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
        x = torch.randn(2, 8, 10, 10, generator=generator).contiguous(memory_format=torch.channels_last)
        try:
            got = PackedConv(conv, (2, 8, 10, 10), torch.float32, "relu")(x)
        except RuntimeError as exc:  # an op this torch/CPU build lacks at run time
            log.info("packed graph unavailable: %s", " ".join(str(exc).split())[:200])
            return False
        expected = torch.relu(conv(x))
    good = bool(torch.allclose(got, expected, rtol=1e-5, atol=1e-5))
    if not good:
        log.info("packed graph unavailable: its probe convolution disagrees with nn.Conv2d")
    return good


class PackedConv:
    """One convolution with its weight packed for a (B, C, H, W) input, and its pointwise post-op."""

    def __init__(self, conv: nn.Conv2d, input_size: Sequence[int], dtype: torch.dtype, post: str = "none", slope=0.0):
        if post not in _POINTWISE:
            raise ValueError(f"unsupported post-op {post!r}")
        if conv.bias is None:
            raise ValueError("packed convolutions need a bias (fold the BatchNorm first)")
        if isinstance(conv.padding, str):
            raise ValueError("string padding is not supported")
        self.padding = [int(p) for p in conv.padding]
        self.stride, self.dilation, self.groups = list(conv.stride), list(conv.dilation), conv.groups
        weight = conv.weight.detach().to(dtype)
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, list(input_size)
        )
        self.bias = conv.bias.detach().to(dtype)
        self.post, self.scalars = post, ([slope] if post == "leaky_relu" else [])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) channels-last → post(conv(x)) (B, C_out, H', W') channels-last."""
        args = (self.padding, self.stride, self.dilation, self.groups)
        return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *args, self.post, self.scalars, "")

    def add_relu_(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """relu(conv(x) + residual), written into `residual` (which is returned)."""
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            residual,
            x,
            self.weight,
            self.bias,
            self.padding,
            self.stride,
            self.dilation,
            self.groups,
            "add",
            None,
            "relu",
            [],
            "",
        )


PackedBlock = Tuple[PackedConv, PackedConv, PackedConv, Optional[PackedConv]]


class PackedResNet(nn.Module):
    """A folded `ResNet50` (every BatchNorm already in its convolution) as packed convolutions.

    The stem and the early blocks run a few images at a time (`chunk`: as many as keep the largest activation,
    layer 1's 256 × 56², within `ENCODER_CHUNK_BYTES` at batch `batch`); the late blocks whose activations for the
    whole batch fit `WHOLE_BATCH_BYTES` run on `late_chunk` = `batch` images at once. Each weight is packed for
    its part's chunk; the chunks change no number (each image is computed on its own).
    """

    def __init__(self, folded: nn.Module, dtype: torch.dtype, batch: int = 8, size: int = 224):
        super().__init__()
        net = expect_type(folded, ResNet50)
        self.maxpool, self.avgpool = net.maxpool, net.avgpool
        stem = expect_type(net.conv1, nn.Conv2d)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        self.chunk = _balanced_chunk(batch, _largest_activation(net, size) * itemsize, ENCODER_CHUNK_BYTES)
        self.late_chunk = batch
        self.stem = PackedConv(stem, (self.chunk, 3, size, size), dtype, "relu")
        side, channels = (size + 1) // 2 // 2, stem.out_channels  # stride-2 stem, stride-2 max pool (224 → 56)
        blocks = _bottlenecks(net)
        late = _late_start(blocks, side, batch * itemsize)
        self.blocks: List[PackedBlock] = []
        self.late_blocks: List[PackedBlock] = []
        for index, block in enumerate(blocks):
            chunk = self.late_chunk if index >= late else self.chunk
            (self.late_blocks if index >= late else self.blocks).append(
                _pack_block(block, chunk, channels, side, dtype)
            )
            side, channels = (side - 1) // block.conv2.stride[0] + 1, block.conv3.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, 224, 224) channels-last in the graph's dtype → (B, 2048) features."""
        early = [self._early(x[start : start + self.chunk]) for start in range(0, x.shape[0], self.chunk)]
        x = early[0] if len(early) == 1 else torch.cat(early)
        if self.late_blocks:
            late = [
                _run_blocks(self.late_blocks, x[start : start + self.late_chunk])
                for start in range(0, x.shape[0], self.late_chunk)
            ]
            x = late[0] if len(late) == 1 else torch.cat(late)
        return torch.flatten(self.avgpool(x), 1)

    def _early(self, x: torch.Tensor) -> torch.Tensor:
        return _run_blocks(self.blocks, self.maxpool(self.stem(x)))


def _pack_block(block: Bottleneck, chunk: int, channels: int, side: int, dtype: torch.dtype) -> PackedBlock:
    """A bottleneck's convolutions packed for (chunk, channels, side, side) inputs: conv1, conv2, conv3, downsample."""
    stride, width = block.conv2.stride[0], block.conv1.out_channels
    shape_in = (chunk, channels, side, side)
    conv1 = PackedConv(block.conv1, shape_in, dtype, "relu")
    conv2 = PackedConv(block.conv2, (chunk, width, side, side), dtype, "relu")
    out_side = (side - 1) // stride + 1
    conv3 = PackedConv(block.conv3, (chunk, width, out_side, out_side), dtype)
    down = None
    if block.downsample is not None:
        branch = expect_type(block.downsample, nn.Sequential)
        down = PackedConv(expect_type(branch[0], nn.Conv2d), shape_in, dtype)
    return conv1, conv2, conv3, down


def _run_blocks(blocks: List[PackedBlock], x: torch.Tensor) -> torch.Tensor:
    for conv1, conv2, conv3, down in blocks:
        # the downsample branch needs a tensor of its own; otherwise the block's input is consumed in place
        residual = x if down is None else down(x)
        x = conv3.add_relu_(conv2(conv1(x)), residual)
    return x


def _late_start(blocks: List[Bottleneck], side: int, batch_bytes: int) -> int:
    """Index of the first block from which every block's largest activation for the whole batch (`batch_bytes`
    per element) fits `WHOLE_BATCH_BYTES` (len(blocks) when none does); side: the first block's input side."""
    start = len(blocks)
    sizes = _block_activations(blocks, side)
    while start > 0 and sizes[start - 1] * batch_bytes <= WHOLE_BATCH_BYTES:
        start -= 1
    return start


def _bottlenecks(net: ResNet50) -> List[Bottleneck]:
    layers = (net.layer1, net.layer2, net.layer3, net.layer4)
    return [expect_type(module, Bottleneck) for layer in layers for module in layer]


def _largest_activation(net: ResNet50, size: int) -> int:
    """Elements of the largest activation of one image in `net` (the stem's output or a block's widest)."""
    stem = expect_type(net.conv1, nn.Conv2d)
    side = (size + 1) // 2
    return max(stem.out_channels * side * side, *_block_activations(_bottlenecks(net), (side + 1) // 2))


def _block_activations(blocks: List[Bottleneck], side: int) -> List[int]:
    """Elements of each block's widest activation (its first convolution's output or its own) for one image;
    side: the first block's input side."""
    sizes = []
    for block in blocks:
        out_side = (side - 1) // block.conv2.stride[0] + 1
        sizes.append(max(block.conv1.out_channels * side * side, block.conv3.out_channels * out_side * out_side))
        side = out_side
    return sizes


def _balanced_chunk(batch: int, item_bytes: int, budget: int) -> int:
    """Images per chunk: the fewest equal chunks of a `batch` whose `item_bytes` each fit `budget` (at least 1)."""
    chunks = max(1, -(-batch * item_bytes // budget))
    return max(1, -(-batch // chunks))


class PackedDetail(nn.Module):
    """`FusedDetail` as packed convolutions: [upsample ×2, conv + LeakyReLU]×5 → conv → tanh, in `dtype`.

    The decoder runs a few images at a time (`chunk`: as many as keep its largest activation within
    `CHUNK_BYTES`). At batch 8 its 256×256 layers would otherwise allocate 33-67 MB tensors, which the C
    allocator maps fresh from the OS (and page-faults in) on every call; in chunks every activation is
    reused from the heap and stays in the cache: 15.6 → 11.3 ms per image, the same numbers (the convolutions
    compute each image independently).
    """

    def __init__(self, generator: DetailGenerator, dtype: torch.dtype = torch.float32, batch: int = 8):
        super().__init__()
        fused = FusedDetail(generator)
        self.l1, self.init_size, self.out_scale, self.dtype = fused.l1, fused.init_size, fused.out_scale, dtype
        self.steps: List[Tuple[Optional[nn.Upsample], PackedConv]] = []  # (the upsampling before it, conv)
        modules, side = list(fused.blocks), fused.init_size
        channels = fused.l1.out_features // side**2
        known = (nn.Upsample, nn.Conv2d, nn.LeakyReLU, nn.Tanh)
        unknown = [type(m).__name__ for m in modules if not isinstance(m, known)]
        if unknown or not isinstance(modules[-1], nn.Tanh):
            raise ValueError(f"unexpected detail decoder layers: {unknown or 'no final Tanh'}")
        largest = 0  # elements of the largest activation of one image
        for index, module in enumerate(modules):
            if isinstance(module, nn.Upsample):
                side = int(side * float(module.scale_factor))  # type: ignore[arg-type]  # DECA's: 2
                largest = max(largest, channels * side * side)
            elif isinstance(module, nn.Conv2d):
                following = modules[index + 1] if index + 1 < len(modules) else None
                leaky = isinstance(following, nn.LeakyReLU)
                slope = float(following.negative_slope) if isinstance(following, nn.LeakyReLU) else 0.0
                before = modules[index - 1] if index > 0 else None
                upsample = before if isinstance(before, nn.Upsample) else None
                post = "leaky_relu" if leaky else "none"
                conv = PackedConv(module, (batch, channels, side, side), dtype, post, slope)
                self.steps.append((upsample, conv))
                channels = module.out_channels
                largest = max(largest, channels * side * side)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        self.chunk = _balanced_chunk(batch, largest * itemsize, CHUNK_BYTES)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, 181) float32 → uv_z (B, 1, 256, 256) float32."""
        x = self.l1(latent).view(latent.shape[0], -1, self.init_size, self.init_size)
        x = x.to(dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        parts = [self._decode(x[start : start + self.chunk]) for start in range(0, x.shape[0], self.chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        for upsample, conv in self.steps:
            x = conv(x if upsample is None else upsample(x))
        return (torch.tanh(x.float()) * self.out_scale).contiguous()
