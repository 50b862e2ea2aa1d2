"""The compiled extension's CPU renderer kernels against the torch code they replace, side by side in one process.

    .venv/bin/python bench/render_kernels.py [--batch 8] [--size 224] [--rounds 5] [--threads 2]

For each kernel — the barycentric interpolation of the views' 9 channels (`decaenv::interpolate`), DECA's vertex
normals of the dense detail mesh (`decaenv::vertex_normals`), the shape images' directional shading
(`decaenv::shade_directional`) — prints the median ms per call of the torch path and of the kernel over the rounds
(the two alternate in every round), their ratio, and whether the outputs are equal bit for bit (`torch.equal`;
the kernels are used only where they are). Inputs: the FLAME-topology benchmark head of `bench/rasterize.py`
rasterized at `--size`, and DECA's UV-grid triangulation at 256² for the dense normals. Needs the CPU build
(`decaenv build --cpu`); exits with one line without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from _common import cpu_flag_summary

from decaenv.runtime import mesh, shading
from decaenv.runtime.rasterizer import api, extension, rasterize
from decaenv.synthetic.heads import deca_head_face_vertices


@contextmanager
def _torch_interpolation():
    """`rasterizer.interpolate` on its torch path (the kernel switched off for the block)."""
    saved = api._compiled_interpolate
    api._compiled_interpolate = lambda *args: None
    try:
        yield
    finally:
        api._compiled_interpolate = saved


def _cases(batch: int, size: int) -> Dict[str, tuple]:
    """{name: (torch path, kernel)}: callables on the same inputs."""
    generator = torch.Generator().manual_seed(0)
    face_vertices = deca_head_face_vertices(batch=batch, scale=10.0, jitter=0.2, seed=batch)
    fragments = rasterize(face_vertices, size, size, backend="cpu")
    attributes = torch.randn(batch, face_vertices.shape[1], 3, 9, generator=generator)

    def torch_interpolate():
        with _torch_interpolation():
            return api.interpolate(fragments, attributes)

    dense_faces = torch.from_numpy(mesh.generate_triangles(256, 256))
    dense_vertices = torch.randn(batch, 256 * 256, 3, generator=generator)
    normals_op = torch.ops.decaenv.vertex_normals

    views = api.interpolate(fragments, attributes)
    normal_map = F.normalize(views[:, 3:6], dim=1) * views[:, 9:10]
    lights = shading.default_shape_lights(batch, "cpu")
    grey = shading.SHAPE_GREY * fragments.bary.sum(-1)[:, None]
    alpha = views[:, 9:10].contiguous()
    backdrop = torch.rand(batch, 3, size, size, generator=generator)
    shade_args = (normal_map, lights, grey, alpha, backdrop)
    return {
        f"interpolate ({batch} × {size}², 9 channels)": (
            torch_interpolate,
            lambda: api.interpolate(fragments, attributes),
        ),
        f"vertex normals ({batch} × 256² grid)": (
            lambda: mesh._torch_normals(dense_vertices, dense_faces),
            lambda: normals_op(dense_vertices, dense_faces),
        ),
        f"shape shading ({batch} × {size}²)": (
            lambda: shading._torch_shape_shading(*shade_args),
            lambda: shading._kernel_shape_shading(torch.ops.decaenv.shade_directional, *shade_args),
        ),
    }


def _median_ms(run: Callable, calls: int) -> float:
    times: List[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per variant and round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if extension.load() is None or extension.loaded_op("shade_directional") is None:
        print("the compiled CPU extension is not built here: run `decaenv build --cpu` first", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags {cpu_flag_summary()}")
    print(f"{'':44} {'torch':>9} {'kernel':>9} {'kernel/torch':>13}  same output")
    with torch.no_grad():
        for name, (baseline, kernel) in _cases(args.batch, args.size).items():
            same = torch.equal(baseline(), kernel())
            rows: Dict[str, List[float]] = {"torch": [], "kernel": []}
            for _ in range(args.rounds):
                for label, run in (("torch", baseline), ("kernel", kernel)):
                    run()
                    rows[label].append(_median_ms(run, args.calls))
            t, k = statistics.median(rows["torch"]), statistics.median(rows["kernel"])
            print(f"{name:44} {t:7.2f} ms {k:7.2f} ms {k / t:12.2f}x  {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
