"""MTCNN face detector, implemented here in plain torch; its weights come through the data manifest.

The P-Net/R-Net/O-Net state dicts (1.9 MB) are the ones facenet-pytorch 2.6.0 ships in its wheel
(`facenet_pytorch/data/{pnet,rnet,onet}.pt`); `decaenv fetch mtcnn` extracts them,
sha256-pinned, into `<data dir>/mtcnn/` (or `fetch --from` the wheel offline). The package is never installed
by decaenv nor imported (it pins torch < 2.3 and needs torchvision); an installed copy's `data/` folder is still
used when the data dir has no weights. Files are read with `torch.load(weights_only=True)`. The algorithm is the
usual three-stage cascade (image pyramid with factor 0.709 from a 20-pixel minimum face, thresholds 0.6 / 0.7 /
0.7, NMS, box regression, squaring). The largest face is returned as a DECA "bbox" box.

Speed (issue 16): the proposal stage first looks only for faces of at least 1/`FAST_FRACTION` of the image's
short side — the same as running it on a copy downscaled so such a face is 20 px, about 10× fewer pixels on a
512×512 photo — while the refinement and output stages still read the full-resolution image, so the boxes
are the full search's; when that pass finds no face of that size, the full pyramid runs (the detection rate
does not change). All pyramid levels are packed into one canvas and P-Net runs once (`mtcnn_pyramid`); every
resize is read from one integer summed-area table in a reused buffer; R-Net and O-Net each run once on all
their patches; boxes stay in torch, NMS too or in the extension's `nms_keep` kernel where it is loaded (`mtcnn_ops`);
the networks run channels-last without autograd.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from decaenv.errors import DataError
from decaenv.runtime.detectors.base import Detection, Detector
from decaenv.runtime.detectors.mtcnn_ops import (
    MaxPool,
    SummedAreaTable,
    area_resize,
    integer_boxes,
    nms,
    regress,
    square,
)
from decaenv.runtime.detectors.mtcnn_pyramid import FACTOR, MIN_FACE, PyramidPlan

WEIGHT_PACKAGE = "facenet_pytorch"
THRESHOLDS = (0.6, 0.7, 0.7)
#: The fast first pass looks for faces of at least short side / FAST_FRACTION (see the module docstring).
FAST_FRACTION = 8


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12×12 receptive field, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = MaxPool(2, 2)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor, conv1_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) normalised → face probability (B, H', W'), box regression (B, 4, H', W').
        conv1_mask: (1, 1, H-2, W-2) 0 / -inf added before the pool (a pyramid canvas: mtcnn_pyramid)."""
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x if conv1_mask is None else x + conv1_mask)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24×24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = MaxPool(3, 2)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = MaxPool(3, 2)
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
        self.pool1 = MaxPool(3, 2)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = MaxPool(3, 2)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = MaxPool(2, 2)
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


def fast_skip_levels(short_side: int) -> int:
    """Pyramid levels the fast pass leaves out: those for faces smaller than short_side / FAST_FRACTION."""
    skip, face = 0, float(MIN_FACE)
    while face / FACTOR <= short_side / FAST_FRACTION:
        face /= FACTOR
        skip += 1
    return skip


class MtcnnDetector(Detector):
    """MTCNN with facenet-pytorch's weights; returns the largest face as a DECA "bbox" box. Thread-safe: each
    thread reuses a summed-area table buffer of its own between images.

    Args:
        device: torch device for the three networks. data_dir: where to look for `mtcnn/` (see `weights_dir`).
    Raises:
        DataError: the weight files are not there, or one does not load.
    """

    name = "mtcnn"
    thread_safe = True

    def __init__(self, device: str = "cpu", data_dir: Optional[Path] = None):
        from decaenv.runtime.model_files import load_strict, load_torch_file

        folder = weights_dir(data_dir)
        if folder is None:
            raise DataError(
                f"the MTCNN weights (pnet.pt, rnet.pt, onet.pt) are not in the data dir's {DATA_SUBDIR}/ folder",
                hint=FETCH_HINT,
            )
        self.device = torch.device(device)
        self.data_dir = data_dir  # (worker processes rebuild the detector from it: input_procs)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, stem in zip((self.pnet, self.rnet, self.onet), WEIGHT_FILES):
            path = folder / f"{stem}.pt"
            load_strict(net, load_torch_file(path, f"MTCNN weights {stem}"), stem, path)
            net.to(self.device).eval()
        self._prepare()

    def _prepare(self) -> None:
        """Inference set-up: channels-last networks (max pooling is ~10× faster so on CPU), no gradients, and
        the summed-area table's reusable buffer."""
        for net in (self.pnet, self.rnet, self.onet):
            net.to(memory_format=torch.channels_last).requires_grad_(False)  # type: ignore[call-overload]
        self._local = threading.local()  # each thread's SummedAreaTable
        self._plans: Dict[Tuple[int, int, int], PyramidPlan] = {}

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
        array = np.ascontiguousarray(image, dtype=np.uint8)
        pixels = torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device)
        table = getattr(self._local, "sat", None)
        if table is None:
            table = self._local.sat = SummedAreaTable()
        sat = table.fill(pixels)
        skip = fast_skip_levels(min(image.shape[:2])) if fast else 0
        faces = self._cascade(sat, skip) if skip else []
        # a face below the fast pass's size was found at a coarser level than the full search would use: redo
        if faces and max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces) >= MIN_FACE / FACTOR**skip:
            return faces
        return self._cascade(sat, 0)

    def _cascade(self, sat: SummedAreaTable, skip: int) -> List[Detection]:
        boxes = self._stage1(sat, skip)
        if len(boxes):
            boxes = self._stage2(sat, boxes)
        if not len(boxes):
            return []
        boxes, points = self._stage3(sat, boxes)
        rows, marks = boxes.cpu().numpy(), points.cpu().numpy()
        return [
            Detection(box=(b[0], b[1], b[2], b[3]), kind="bbox", landmarks=p, score=float(b[4]))
            for b, p in zip(rows.tolist(), marks)
        ]

    def _plan(self, height: int, width: int, skip: int) -> PyramidPlan:
        key = (height, width, skip)
        plan = self._plans.get(key)
        if plan is None:  # (threads may build the same plan twice; each uses its own)
            if len(self._plans) >= 8:  # photos of many sizes: keep the memory bounded
                self._plans.clear()
            plan = self._plans[key] = PyramidPlan.build(height, width, skip, self.device)
        return plan

    def _stage1(self, sat: SummedAreaTable, skip: int = 0) -> torch.Tensor:
        """Proposals (N, 5: x1 y1 x2 y2 score, float64) from the image pyramid, leaving out its first `skip`
        (largest, small-face) levels; P-Net runs once over all levels packed in one canvas."""
        plan = self._plan(sat.height, sat.width, skip)
        if not len(plan.scales):
            return torch.zeros(0, 5, dtype=torch.float64, device=self.device)
        prob, reg = self.pnet(plan.canvas_image(sat), plan.conv1_mask)
        ys, xs = torch.nonzero((prob[0] >= THRESHOLDS[0]) & (plan.level >= 0), as_tuple=True)
        level = plan.level[ys, xs]
        origin = plan.origin[level]
        cells = torch.stack([xs - origin[:, 1], ys - origin[:, 0]], 1).double()
        scale = plan.scales[level][:, None]
        corners = [torch.floor((2 * cells + 1) / scale), torch.floor((2 * cells + 12) / scale)]
        boxes = torch.cat([*corners, prob[0, ys, xs].double()[:, None], reg[0][:, ys, xs].T.double()], 1)
        kept = nms(boxes[:, :4], boxes[:, 4], 0.5, groups=level)  # per level, all levels at once
        boxes = boxes[kept[torch.sort(level[kept], stable=True).indices]]  # level by level, best first
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        return square(torch.cat([regress(boxes[:, :4], boxes[:, 5:9], plus_one=False), boxes[:, 4:5]], 1))

    def _stage2(self, sat: SummedAreaTable, boxes: torch.Tensor) -> torch.Tensor:
        """R-Net on 24×24 crops of the full-resolution image: (N, 5) → (M, 5) boxes."""
        prob, reg = self.rnet(area_resize(sat, integer_boxes(boxes), 24, 24))
        keep = prob > THRESHOLDS[1]
        boxes, reg = torch.cat([boxes[keep, :4], prob[keep, None].double()], 1), reg[keep].double()
        if not len(boxes):
            return boxes
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[pick], reg[pick]
        return square(torch.cat([regress(boxes, reg), boxes[:, 4:5]], 1))

    def _stage3(self, sat: SummedAreaTable, boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """O-Net on 48×48 crops: (N, 5) boxes → (M, 5) final boxes and (M, 5, 2) landmarks."""
        prob, reg, marks = self.onet(area_resize(sat, integer_boxes(boxes), 48, 48))
        keep = prob > THRESHOLDS[2]
        boxes = torch.cat([boxes[keep, :4], prob[keep, None].double()], 1)
        reg, marks = reg[keep].double(), marks[keep].double()
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        points = torch.stack([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], 2)
        boxes = torch.cat([regress(boxes, reg), boxes[:, 4:5]], 1)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[pick], points[pick]
