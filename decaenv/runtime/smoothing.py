"""`reconstruct --smooth`: temporal smoothing of video frames' crop boxes and codes, to remove the frame-to-frame
jitter of per-frame reconstruction. Off by default: it changes DECA's numbers.

The filter is a causal exponential moving average, per video and in frame order (the frames that are
processed, i.e. every `--sample-step`-th):  x̂₀ = x₀,  x̂ₜ = α·xₜ + (1 − α)·x̂ₜ₋₁  with α = `--smooth-alpha`
(default 0.5; 1 = no smoothing, smaller = smoother but slower to follow motion: the lag is (1 − α)/α frames).
It is applied to the face box (left, top, right, bottom) before cropping and to every code (shape, tex, exp,
pose — axis-angle, small frame-to-frame changes —, cam, light, detail) before decoding. A frame where no face
is found leaves the state unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Generic, Hashable, Optional, Tuple, TypeVar

import numpy as np

from decaenv.errors import UsageError
from decaenv.runtime.config import CODE_KEYS

if TYPE_CHECKING:
    import torch

#: What a filter smooths: numpy arrays (boxes) or torch tensors (codes).
_A = TypeVar("_A", np.ndarray, "torch.Tensor")


class Ema(Generic[_A]):
    """Per-key exponential moving averages (one state per video)."""

    def __init__(self, alpha: float = 0.5):
        if not 0.0 < alpha <= 1.0:
            raise UsageError(f"--smooth-alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.state: Dict[Hashable, _A] = {}

    def __call__(self, key: Hashable, value: _A) -> _A:
        """The smoothed value of `key` after observing `value` (numpy array or torch tensor)."""
        previous = self.state.get(key)
        smoothed = value if previous is None else self.alpha * value + (1.0 - self.alpha) * previous
        self.state[key] = smoothed
        return smoothed


class VideoSmoother:
    """Smooths boxes and codes of video frames (images are left alone)."""

    def __init__(self, alpha: float = 0.5):
        self.boxes: Ema[np.ndarray] = Ema(alpha)
        self.codes: Ema[torch.Tensor] = Ema(alpha)

    def box(self, item, box: Optional[Tuple[float, float, float, float]]):
        if item.frame is None or box is None:
            return box
        return tuple(float(v) for v in self.boxes(str(item.source), np.asarray(box, dtype=np.float64)))

    def codedict(self, codedict: Dict, items) -> Dict:
        """Filter each row of a batch whose item is a video frame, in batch order."""
        if all(item.frame is None for item in items):
            return codedict
        out = {k: v.clone() if k in CODE_KEYS else v for k, v in codedict.items()}
        for row, item in enumerate(items):
            if item.frame is None:
                continue
            for key in CODE_KEYS:
                if key in out:
                    out[key][row] = self.codes((str(item.source), key), codedict[key][row])
        return out
