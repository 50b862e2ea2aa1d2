"""The build probe (runs inside the probe worker): compile and load a torch C++ (and CUDA) extension in a
throw-away folder, exactly as decaenv's rasterizer build would, and return the log for diagnosis.

When the rasterizer package offers a build API taking a build folder, its real sources are compiled
(`decaenv.doctor.integrations.rasterizer_build_probe`); otherwise a minimal op using the same ATen
constructs (AT_DISPATCH on `scalar_type()`, `data_ptr<T>()`) and torch's default flags (no `-std`) is built.
Nothing outside the scratch folder is written: `TORCH_EXTENSIONS_DIR` and the user's caches are untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from typing import Any, Dict, Iterator, List

from decaenv.doctor.contracts import BuildSection, BuildTarget

CPU_SOURCE = r"""
#include <torch/extension.h>

torch::Tensor add_one(const torch::Tensor& x) {
  TORCH_CHECK(x.is_contiguous(), "contiguous input expected");
  auto out = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "decaenv_probe_add_one", [&] {
    const scalar_t* src = x.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < x.numel(); ++i) dst[i] = src[i] + scalar_t(1);
  });
  return out;
}
#ifdef WITH_CUDA
torch::Tensor add_one_cuda(const torch::Tensor& x);
#endif

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("add_one", &add_one, "x + 1 (CPU)");
#ifdef WITH_CUDA
  m.def("add_one_cuda", &add_one_cuda, "x + 1 (CUDA)");
#endif
}
"""

CUDA_SOURCE = r"""
#include <torch/extension.h>

template <typename scalar_t>
__global__ void add_one_kernel(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t n) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) dst[i] = src[i] + scalar_t(1);
}

torch::Tensor add_one_cuda(const torch::Tensor& x) {
  auto out = torch::empty_like(x);
  const int64_t n = x.numel();
  const int threads = 128;
  const int blocks = (int)((n + threads - 1) / threads);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "decaenv_probe_add_one_cuda", [&] {
    add_one_kernel<scalar_t><<<blocks, threads>>>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n);
  });
  return out;
}
"""


@contextlib.contextmanager
def captured_fds(path: str) -> Iterator[None]:
    """Send everything written to fds 1 and 2 (compiler and ninja output included) to `path`."""
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _read(path: str, limit: int = 60000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    return text if len(text) <= limit else text[:limit // 2] + "\n...\n" + text[-limit // 2:]


def _build_one(torch, scratch: str, name: str, sources: List[str], with_cuda: bool) -> BuildTarget:
    from torch.utils import cpp_extension

    log = os.path.join(scratch, f"{name}.log")
    build_dir = os.path.join(scratch, name)
    os.makedirs(build_dir)
    start = time.perf_counter()
    result: BuildTarget = {"target": "cuda" if with_cuda else "cpu"}
    try:
        with captured_fds(log):
            module = cpp_extension.load(name=name, sources=sources, build_directory=build_dir, verbose=True,
                                        with_cuda=with_cuda,
                                        extra_cflags=["-DWITH_CUDA"] if with_cuda else None)
        x = torch.arange(4, dtype=torch.float32)
        result["ran"] = bool(torch.equal(module.add_one(x), x + 1))
        if with_cuda and torch.cuda.is_available():
            y = x.cuda()
            result["ran_cuda"] = bool(torch.equal(module.add_one_cuda(y).cpu(), x + 1))
        result["ok"] = True
    except BaseException as exc:  # noqa: BLE001 - every failure is diagnosed from the log
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"[:20000]
    result["seconds"] = time.perf_counter() - start
    result["log"] = _read(log)
    return result


def build_section(common: Dict[str, Any]) -> BuildSection:
    """Build the CPU probe (and the CUDA one when torch is a CUDA build and a toolkit is found)."""
    import torch
    from torch.utils import cpp_extension

    from decaenv.doctor import integrations

    scratch = tempfile.mkdtemp(prefix="decaenv-build-probe-")
    try:
        real = integrations.rasterizer_build_probe(scratch, timeout=float(common.get("build_timeout", 400.0)))
        if real is not None:
            return real
        cuda_home = getattr(cpp_extension, "CUDA_HOME", None)
        want_cuda = bool(torch.version.cuda) and bool(cuda_home) and not common.get("cpu_only")
        out: BuildSection = {"sources": "minimal", "cuda_home": cuda_home, "torch": torch.__version__,
                             "compiler": os.environ.get("CXX", "c++")}
        cpp = os.path.join(scratch, "probe.cpp")
        with open(cpp, "w", encoding="utf-8") as fh:
            fh.write(CPU_SOURCE)
        tag = f"{os.getpid()}"
        out["cpu"] = _build_one(torch, scratch, f"decaenv_probe_cpu_{tag}", [cpp], with_cuda=False)
        if want_cuda:
            cu = os.path.join(scratch, "probe_cuda.cu")
            with open(cu, "w", encoding="utf-8") as fh:
                fh.write(CUDA_SOURCE)
            out["cuda"] = _build_one(torch, scratch, f"decaenv_probe_cuda_{tag}", [cpp, cu], with_cuda=True)
        else:
            out["cuda"] = None
            out["cuda_skipped"] = ("torch is a CPU build" if not torch.version.cuda else
                                   "no CUDA toolkit found (torch's CUDA_HOME is None)")
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


SECTIONS = {"build": build_section}
