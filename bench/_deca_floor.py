"""The eager-fp32 floor as DECA itself runs it: its three networks alone, in a process of their own.

`bench/reconstruct.py` times the bare forwards inside its own process, after each run; what that process
allocated before changes how many fresh pages glibc maps for the forwards' activations, so that floor moves with
the process's history. This script is the reference it can be checked against: a fresh Python process that builds
E_flame, E_detail and D_detail the way DECA's `_create_model` does — from DECA's own code when `--deca-src` names a
DECA checkout (its `decalib.models`, read, never copied), otherwise decaenv's eager copies of the same layers —
loads the benchmark's checkpoint into them and runs them as `demo_reconstruct.py` does (`torch.no_grad()`,
fp32, contiguous (N, C, H, W) inputs, glibc's default heap, nothing else loaded) on the benchmark's own crops and
batches.

    python bench/_deca_floor.py --crops CROPS.pt --checkpoint DATA/deca_model.tar [--deca-src DECA] [--rounds 5]

prints one JSON line: the best round's seconds per image, its minor page faults per image, torch's version and
threads, and which code ran.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import types
from pathlib import Path
from typing import Dict, List, Tuple


def save_crops(path: Path, batches: List[Tuple[object, object]]) -> None:
    """Write the run's batches (images (B, 3, 224, 224), latent (B, 181)) for the floor process to read."""
    import torch

    torch.save([{"images": images, "latent": latent} for images, latent in batches], path)


def _torchvision_stand_in() -> None:
    """DECA's `resnet.py` imports torchvision only to copy ImageNet weights that the checkpoint overwrites; where
    torchvision is missing (or broken beside this torch, as PyPI's is beside a local CPU build), a stand-in with an
    empty state dict lets DECA's code build the same networks."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError, AttributeError):  # (missing, or "operator torchvision::nms does not exist")
        stand_in = types.ModuleType("torchvision")
        stand_in.models = types.SimpleNamespace(  # type: ignore[attr-defined]
            resnet50=lambda pretrained=False, **_: types.SimpleNamespace(state_dict=dict)
        )
        sys.modules["torchvision"] = stand_in


def _sizes() -> Tuple[int, int, int, float]:
    """E_flame's outputs, E_detail's, D_detail's condition (jaw 3 + expression) and `max_z`, from decaenv's copy of
    DECA's model config, summed as DECA's `_create_model` sums them (236, 128, 53, 0.01)."""
    from decaenv.runtime.config import ModelConfig

    model = ModelConfig()
    n_param = sum(getattr(model, f"n_{name}") for name in model.param_list)
    return n_param, model.n_detail, model.n_exp + 3, model.max_z


def _networks(deca_src: str):
    """(E_flame, E_detail, D_detail, which code) built as DECA's `_create_model` builds them."""
    n_param, n_detail, n_cond, max_z = _sizes()
    if deca_src:
        _torchvision_stand_in()
        sys.path.insert(0, str(Path(deca_src).resolve()))
        from decalib.models.decoders import Generator
        from decalib.models.encoders import ResnetEncoder

        detail = Generator(latent_dim=n_detail + n_cond, out_channels=1, out_scale=max_z, sample_mode="bilinear")
        return ResnetEncoder(outsize=n_param), ResnetEncoder(outsize=n_detail), detail, f"DECA's code ({deca_src})"
    from decaenv.runtime.decoders import DetailGenerator
    from decaenv.runtime.encoders import ResnetEncoder as Ours

    detail = DetailGenerator(latent_dim=n_detail + n_cond, out_scale=max_z, init=False)
    return Ours(n_param, init=False), Ours(n_detail, init=False), detail, "decaenv's eager modules"


def measure(crops: Path, checkpoint: Path, deca_src: str, rounds: int, threads: int) -> Dict[str, object]:
    """Best of `rounds` passes over every batch in `crops`: seconds and minor page faults per image."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    # DECA's demo feeds its networks contiguous (N, C, H, W) tensors; the run's crops may be channels-last (the
    # fast graphs' layout), with which eager torch runs every convolution channels-last (~15 % faster here)
    batches = [{k: v.contiguous() for k, v in batch.items()} for batch in torch.load(crops, weights_only=True)]
    e_flame, e_detail, d_detail, code = _networks(deca_src)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for name, net in (("E_flame", e_flame), ("E_detail", e_detail), ("D_detail", d_detail)):
        net.load_state_dict(state[name])
        net.eval()
    del state
    count = sum(batch["images"].shape[0] for batch in batches)
    best = (float("inf"), 0)
    for _ in range(rounds):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        with torch.no_grad():  # as demo_reconstruct.py runs them
            for batch in batches:
                e_flame(batch["images"])
                e_detail(batch["images"])
                d_detail(batch["latent"])
        seconds = time.perf_counter() - start
        best = min(best, (seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
    return {
        "floor_per_image": best[0] / count,
        "page_faults_per_image": best[1] / count,
        "images": count,
        "rounds": rounds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "code": code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", required=True, help="the batches, written by save_crops")
    parser.add_argument("--checkpoint", required=True, help="deca_model.tar (E_flame, E_detail, D_detail)")
    parser.add_argument("--deca-src", default="", help="a DECA checkout: time its own network code")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    print(json.dumps(measure(Path(args.crops), Path(args.checkpoint), args.deca_src, args.rounds, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
