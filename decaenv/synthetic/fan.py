"""Random-weight face_alignment files (S3FD detector + 2DFAN4 landmarks) in a torch hub checkpoint folder.

For tests and demos that must run face_alignment's real code offline without its licensed-by-download
weights: the files have the real names (those the installed face_alignment downloads), the real state-dict
keys and shapes, and seeded random values. The S3FD classifier layers are set so that the detector's answer
is controlled (with fully random weights it fires everywhere and FAN then runs on hundreds of boxes):
`faces=False` → every anchor is background (no face anywhere: DECA takes its whole-image path, decaenv's
`auto` falls back to MTCNN); `faces=True` → exactly the coarsest anchors fire (one large face on a small image).
Needs face_alignment >= 1.5 (its landmark file is a state dict) and torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from decaenv.errors import DataError

HIGH, LOW = 10.0, -10.0  # classifier logits: [background..., face]


def write_fan_weights(
    folder: os.PathLike,
    *,
    faces: bool = False,
    seed: int = 0,
    half: bool = True,
    landmarks_from: Optional[os.PathLike] = None,
) -> Dict[str, Path]:
    """Write S3FD and 2DFAN4 weight files into `folder` (e.g. `$TORCH_HOME/hub/checkpoints`).

    `half`: store the tensors as float16 (≈ 93 MB instead of 185 MB; `load_state_dict` copies them into the
    float32 networks, so face_alignment runs exactly as with float32 files of the same values).
    `landmarks_from`: a folder this function filled before with the same `seed` and `half`: its 2DFAN4 file
    (which does not depend on `faces`) is hard-linked (copied where the filesystem cannot link) instead of
    written again; the files are the same bytes either way.

    Returns:
        {"detector": path, "landmarks": path}.
    Raises:
        DataError: face_alignment is missing or older than 1.5 (TorchScript landmark files).
    """
    import torch

    try:
        import face_alignment.api as api
        from face_alignment.detection.sfd.net_s3fd import s3fd
        from face_alignment.models import FAN
    except ImportError as exc:
        raise DataError(f"face_alignment is not installed ({exc})", hint="pip install 'decaenv[fan]'") from None
    if hasattr(api, "default_model_urls"):
        raise DataError(
            "random FAN weights need face_alignment >= 1.5 (older releases load TorchScript files)",
            hint="pip install -U face-alignment",
        )
    from decaenv.fan_weights import required_weight_urls

    urls = required_weight_urls()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / os.path.basename(url) for key, url in urls.items()}
    torch.manual_seed(seed)
    landmarks = FAN(4)  # built either way: the S3FD's random weights come next from the same generator
    if landmarks_from is None:
        torch.save(_stored(landmarks.state_dict(), half), paths["landmarks"])
    else:
        _link_or_copy(Path(landmarks_from) / paths["landmarks"].name, paths["landmarks"])
    torch.save(_stored(_controlled_s3fd(s3fd(), faces).state_dict(), half), paths["detector"])
    return paths


def _link_or_copy(src: Path, dst: Path) -> None:
    import shutil

    if not src.is_file():
        raise DataError(f"{src} does not exist", hint="write the landmark weights first (landmarks_from=None)")
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _stored(state, half: bool):
    return {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}


def _controlled_s3fd(net, faces: bool):
    """Zero every box head; classifiers say background, except the coarsest scale when `faces`."""
    import torch

    with torch.no_grad():
        for name, module in net.named_children():
            if not name.endswith(("_conf", "_loc")):
                continue
            module.weight.zero_()
            module.bias.zero_()
            if name.endswith("_conf"):  # conv3_3's head has 3 background maxout channels, then the face
                logits = [HIGH] * (module.bias.numel() - 1) + [LOW]
                module.bias.copy_(torch.tensor(logits))
        if faces:
            net.conv6_2_mbox_conf.bias.copy_(torch.tensor([LOW, HIGH]))
    return net
