"""MTCNN face detector, implemented here in plain torch; its weights come through the data manifest.

The P-Net/R-Net/O-Net state dicts (1.9 MB) are the ones facenet-pytorch 2.6.0 ships in its wheel
(`facenet_pytorch/data/{pnet,rnet,onet}.pt`); `decaenv fetch mtcnn` extracts them,
sha256-pinned, into `<data dir>/mtcnn/` (or `fetch --from` the wheel offline). The package is never installed
by decaenv nor imported (it pins torch < 2.3 and needs torchvision); an installed copy's `data/` folder is still
used when the data dir has no weights. Files are read with `torch.load(weights_only=True)`. The algorithm is the
usual three-stage cascade (image pyramid with factor 0.709 from a 20-pixel minimum face, thresholds 0.6 / 0.7 /
0.7, NMS, box regression, squaring). The largest face is returned as a DECA "bbox" box.

Speed: the proposal stage first looks only for faces of at least 1/`FAST_FRACTION` of the image's short
side — the same as running it on a copy downscaled so such a face is 20 px, about 10× fewer pixels on a
512×512 photo — while the refinement and output stages still read the full-resolution image, so the boxes
are today's; when that pass finds no face of that size, the full pyramid runs (the detection rate does not change).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from decaenv.errors import DataError
from decaenv.runtime.detectors.base import Detection, Detector

WEIGHT_PACKAGE = "facenet_pytorch"
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR, MIN_FACE = 0.709, 20
#: The fast first pass looks for faces of at least short side / FAST_FRACTION (see the module docstring).
FAST_FRACTION = 8


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12×12 receptive field, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) normalised → face probability (B, H', W'), box regression (B, 4, H', W')."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24×24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 3, 24, 24) → probability (N,), regression (N, 4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))  # weights expect (W, H, C)
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48×48 crops: probability, regression and 5 landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (N, 3, 48, 48) → probability (N,), regression (N, 4), landmarks (N, 10) (5 x then 5 y, relative)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


WEIGHT_FILES = ("pnet", "rnet", "onet")
#: Where `decaenv fetch` puts the weights, inside the data dir (manifest ids mtcnn-pnet, mtcnn-rnet, mtcnn-onet).
DATA_SUBDIR = "mtcnn"
FETCH_HINT = "decaenv fetch mtcnn"


def _complete(folder: Path) -> bool:
    return all((folder / f"{n}.pt").is_file() for n in WEIGHT_FILES)


def weights_dir(data_dir: Optional[Path] = None) -> Optional[Path]:
    """The folder holding pnet.pt, rnet.pt and onet.pt, or None.

    Looks in `<data_dir>/mtcnn` (default: the resolved data dir, see `decaenv.paths`), then in an installed
    facenet-pytorch's `data/` folder (found without importing it).
    """
    from decaenv.paths import resolve_data_dir

    root = Path(data_dir) if data_dir is not None else resolve_data_dir().path
    if _complete(root / DATA_SUBDIR):
        return root / DATA_SUBDIR
    spec = importlib.util.find_spec(WEIGHT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if _complete(folder) else None


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression. boxes: (N, 4) x1 y1 x2 y2; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: List[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        inter = w * h
        denom = np.minimum(areas[i], areas[rest]) if mode == "min" else areas[i] + areas[rest] - inter
        overlap = np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)


def summed_area_table(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (C, H+1, W+1) float64 cumulative sums with a zero first row and column."""
    sat = torch.zeros(image.shape[0], image.shape[1] + 1, image.shape[2] + 1, dtype=torch.float64, device=image.device)
    sat[:, 1:, 1:] = image.double().cumsum(1).cumsum(2)
    return sat


def _bounds(start: torch.Tensor, extent: torch.Tensor, out: int):
    """adaptive pooling's cell edges: start + floor(i·n/out) and start + ceil((i+1)·n/out). (N,) → 2× (N, out)."""
    i = torch.arange(out, device=start.device)
    lo = start[:, None] + torch.div(i[None] * extent[:, None], out, rounding_mode="floor")
    hi = start[:, None] - torch.div(-(i[None] + 1) * extent[:, None], out, rounding_mode="floor")
    return lo, hi


def area_resize(sat: torch.Tensor, boxes: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Crops of integer boxes (x1, y1, x2, y2; end exclusive; zero outside the image) resized by area
    averaging — `F.interpolate(crop, mode="area")` for every box at once, from a summed-area table.

    Args:
        sat: `summed_area_table` of a (C, H, W) image. boxes: (N, 4) int64.
    Returns:
        (N, C, out_h, out_w) float32.
    """
    height, width = sat.shape[1] - 1, sat.shape[2] - 1
    r0, r1 = _bounds(boxes[:, 1], boxes[:, 3] - boxes[:, 1], out_h)
    c0, c1 = _bounds(boxes[:, 0], boxes[:, 2] - boxes[:, 0], out_w)
    area = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).double()
    r0, r1 = r0.clamp(0, height), r1.clamp(0, height)
    c0, c1 = c0.clamp(0, width), c1.clamp(0, width)

    def at(rows, cols):
        return sat[:, rows[:, :, None], cols[:, None, :]]  # (C, N, out_h, out_w)

    sums = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    return (sums / area).permute(1, 0, 2, 3).float()


def _crops(sat: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Zero-padded crops of the rounded boxes, area-resized to size×size. sat: of the normalised image."""
    ints = torch.from_numpy(np.round(boxes[:, :4]).astype(np.int64)).to(sat.device)
    ints[:, 2] = torch.maximum(ints[:, 2], ints[:, 0] + 1)
    ints[:, 3] = torch.maximum(ints[:, 3], ints[:, 1] + 1)
    return area_resize(sat, ints, size, size)


def fast_skip_levels(short_side: int) -> int:
    """Pyramid levels the fast pass leaves out: those for faces smaller than short_side / FAST_FRACTION."""
    skip, face = 0, float(MIN_FACE)
    while face / FACTOR <= short_side / FAST_FRACTION:
        face /= FACTOR
        skip += 1
    return skip


class MtcnnDetector(Detector):
    """MTCNN with facenet-pytorch's weights; returns the largest face as a DECA "bbox" box.

    Args:
        device: torch device for the three networks. data_dir: where to look for `mtcnn/` (see `weights_dir`).
    Raises:
        DataError: the weight files are not there, or one does not load.
    """

    name = "mtcnn"

    def __init__(self, device: str = "cpu", data_dir: Optional[Path] = None):
        from decaenv.runtime.model_files import load_strict, load_torch_file

        folder = weights_dir(data_dir)
        if folder is None:
            raise DataError(
                f"the MTCNN weights (pnet.pt, rnet.pt, onet.pt) are not in the data dir's {DATA_SUBDIR}/ folder",
                hint=FETCH_HINT,
            )
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, stem in zip((self.pnet, self.rnet, self.onet), WEIGHT_FILES):
            path = folder / f"{stem}.pt"
            load_strict(net, load_torch_file(path, f"MTCNN weights {stem}"), stem, path)
            net.to(self.device).eval()

    @torch.inference_mode()
    def _detect(self, image: np.ndarray) -> Optional[Detection]:
        faces = self.detect_all(image)
        if not faces:
            return None
        return max(faces, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))

    def _detect_faces(self, image: np.ndarray) -> List[Detection]:
        return self.detect_all(image)

    @torch.inference_mode()
    def detect_all(self, image: np.ndarray, fast: bool = True) -> List[Detection]:
        """Every face found in an (H, W, 3) uint8 RGB image (`fast`: large faces first, the full search only
        when there are none; `fast=False` always searches down to 20-pixel faces)."""
        tensor = (
            torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1).float()
            - 127.5
        ) / 128.0
        sat = summed_area_table(tensor)
        skip = fast_skip_levels(min(image.shape[:2])) if fast else 0
        faces = self._cascade(sat, skip) if skip else []
        # a face below the fast pass's size was found at a coarser level than the full search would use: redo
        if faces and max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces) >= MIN_FACE / FACTOR**skip:
            return faces
        return self._cascade(sat, 0)

    def _cascade(self, sat: torch.Tensor, skip: int) -> List[Detection]:
        boxes = self._stage1(sat, skip)
        if len(boxes):
            boxes = self._stage2(sat, boxes)
        if not len(boxes):
            return []
        boxes, points = self._stage3(sat, boxes)
        return [
            Detection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), kind="bbox", landmarks=p, score=float(b[4])
            )
            for b, p in zip(boxes, points)
        ]

    def _stage1(self, sat: torch.Tensor, skip: int = 0) -> np.ndarray:
        """Proposals from the image pyramid, leaving out its first `skip` (largest, small-face) levels."""
        h, w = sat.shape[1] - 1, sat.shape[2] - 1
        whole = torch.tensor([[0, 0, w, h]], device=sat.device)
        scale, min_side, found = 12.0 / MIN_FACE, min(h, w) * 12.0 / MIN_FACE, []
        for _ in range(skip):
            scale *= FACTOR
            min_side *= FACTOR
        while min_side >= 12:
            resized = area_resize(sat, whole, int(h * scale + 1), int(w * scale + 1))
            prob, reg = self.pnet(resized)
            prob, reg = prob[0].cpu().numpy(), reg[0].cpu().numpy()
            ys, xs = np.nonzero(prob >= THRESHOLDS[0])
            if len(ys):
                cells = np.stack([xs, ys], 1).astype(np.float64)
                b = np.concatenate(
                    [
                        np.floor((2 * cells + 1) / scale),
                        np.floor((2 * cells + 12) / scale),
                        prob[ys, xs][:, None],
                        reg[:, ys, xs].T,
                    ],
                    1,
                )
                found.append(b[nms(b[:, :4], b[:, 4], 0.5)])
            scale *= FACTOR
            min_side *= FACTOR
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        regressed = _regress(boxes[:, :4], boxes[:, 5:9], plus_one=False)
        return _square(np.concatenate([regressed, boxes[:, 4:5]], 1))

    def _stage2(self, sat: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        prob, reg = self.rnet(_crops(sat, boxes, 24))
        prob, reg = prob.cpu().numpy(), reg.cpu().numpy()
        keep = prob > THRESHOLDS[1]
        boxes, reg = np.concatenate([boxes[keep, :4], prob[keep, None]], 1), reg[keep]
        if not len(boxes):
            return boxes
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[pick], reg[pick]
        return _square(np.concatenate([_regress(boxes, reg), boxes[:, 4:5]], 1))

    def _stage3(self, sat: torch.Tensor, boxes: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
        prob, reg, marks = self.onet(_crops(sat, boxes, 48))
        prob, reg, marks = prob.cpu().numpy(), reg.cpu().numpy(), marks.cpu().numpy()
        keep = prob > THRESHOLDS[2]
        boxes, reg, marks = np.concatenate([boxes[keep, :4], prob[keep, None]], 1), reg[keep], marks[keep]
        if not len(boxes):
            return boxes, []
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack(
            [w[:, None] * marks[:, :5] + boxes[:, 0:1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = np.concatenate([_regress(boxes, reg), boxes[:, 4:5]], 1)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[pick], [points[i] for i in pick]
