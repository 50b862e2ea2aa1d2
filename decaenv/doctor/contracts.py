"""The data contract of every probe section: what the worker's section functions return and the checks read.

One `TypedDict` per section (`SECTION_TYPES`, keyed like `decaenv.doctor.worker.SECTION_SPECS`). Keys are
optional (`total=False`): a section returns fewer facts when it stops early (torch not installed, an import
failing). The section functions (`probes_env`, `probes_data`, `probes_build`, `integrations`) are annotated
with these types, `Context.section` returns them to the checks, and the tests check that the real worker's
answers and every `FakeProbe` answer written by hand conform (tests/doctor/test_contracts.py).

Everything here is JSON-shaped (the answers cross a process boundary as JSON): lists, not tuples.
Standard library only.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict


# -- shared pieces ----------------------------------------------------------------------------------------
class ImportInfo(TypedDict, total=False):
    """One `import` attempted in the worker (`probes_env._try_import`)."""

    importable: bool
    error: str  # "Type: message" when not importable
    where: str  # file:line of the failing frame
    seconds: float
    file: Optional[str]
    version: Optional[str]
    warnings: List[str]


class LoadError(TypedDict, total=False):
    """A data file that failed to load: the exception's type, message and decaenv hint."""

    type: str
    message: str
    hint: Optional[str]


class Unavailable(TypedDict, total=False):
    """Fields of a section whose decaenv API is not importable (`api` False, `reason` why)."""

    api: bool
    reason: str


# -- torch group ------------------------------------------------------------------------------------------
class TorchSection(ImportInfo, total=False):
    """ "torch": the import, the build and a CPU smoke test."""

    installed: bool
    cuda: Optional[str]
    hip: Optional[str]
    debug: bool
    git: Optional[str]
    cxx11_abi: bool
    include: str
    threads: int
    numpy_interop: bool
    numpy_error: str
    cpu_ok: bool
    cpu_error: str


class CudaDevice(TypedDict, total=False):
    """One GPU as torch sees it; `smoke` is "ok" or the error of a tiny kernel."""

    index: int
    name: str
    capability: List[int]  # [major, minor]
    memory_gb: float
    smoke: str


class CudaSection(TypedDict, total=False):
    """ "cuda": torch's CUDA build, availability (and its warnings), devices, arch list."""

    compiled: bool
    cuda: Optional[str]
    visible_devices: Optional[str]
    arch_env: Optional[str]
    available: bool
    error: str
    warnings: List[str]
    arch_list: List[str]
    cudnn: Optional[int]
    devices: List[CudaDevice]


class TorchLoadSection(TypedDict, total=False):
    """ "torch-load": what `torch.load` does by default here (probed)."""

    signature_default: Optional[str]
    env_force: Optional[str]
    env_force_no: Optional[str]
    has_weights_only: bool
    safe_load_ok: bool
    safe_load_error: str
    default_weights_only: bool
    default_error: str


class BackendRow(TypedDict, total=False):
    usable: bool
    reason: str


class ExtensionVariant(TypedDict, total=False):
    built: bool
    usable: bool
    problem: Optional[str]
    path: Optional[str]


class LastBuildError(TypedDict, total=False):
    variant: Optional[str]
    at: Optional[str]
    log: Optional[str]
    cause: Optional[str]
    fix: Optional[str]
    first_error: Optional[str]


class ExtensionSummary(TypedDict, total=False):
    """The compiled rasterizer extension's state (`rasterizer.extension_status()`)."""

    summary: str
    built: bool
    variants: Dict[str, ExtensionVariant]  # "cpu", "cuda"
    key: str
    build_root: Optional[str]
    load_error: Optional[str]
    build_in_progress: Optional[str]  # who holds the build lock, when a build is running
    last_error: Optional[LastBuildError]


class RasterizerSection(Unavailable, total=False):
    """ "rasterizer": usable backends, the automatic choice per device type, the extension."""

    backends: Dict[str, BackendRow]  # by backend name
    choice: Dict[str, Optional[str]]  # device type -> backend name
    reasons: Dict[str, str]  # device type -> why
    extension: ExtensionSummary


#: "pytorch3d": installed, importable, its submodules and a tiny rasterization per device.
Pytorch3dSection = TypedDict(
    "Pytorch3dSection",
    {
        "installed": bool,
        "version": Optional[str],
        "import": ImportInfo,
        "ext": ImportInfo,
        "renderer": ImportInfo,
        "structures": ImportInfo,
        "cpu": str,  # "ok", "empty" or the error of a tiny rasterization
        "cuda": Optional[str],
    },
    total=False,
)


#: "face-alignment": version, import, API, defaults and the cached hub weights.
FaceAlignmentSection = TypedDict(
    "FaceAlignmentSection",
    {
        "installed": bool,
        "version": Optional[str],
        "urls": List[str],
        "hub_dir": str,
        "hub_files": List[str],
        "import": ImportInfo,
        "landmarks_members": List[str],
        "defaults": Dict[str, str],
    },
    total=False,
)


class AutoPlanInfo(TypedDict, total=False):
    """What `--detector auto` picks (`decaenv.runtime.detectors.AutoPlan.to_json()`)."""

    name: Optional[str]
    fallback: Optional[str]
    reason: str
    skipped: List[List[str]]  # [name, why]


class DetectorsSection(Unavailable, total=False):
    """ "detectors": the automatic face-detector choice and each detector's availability (nothing loaded)."""

    plan: AutoPlanInfo
    available: Dict[str, BackendRow]  # detector name -> usable, reason


class DecaImportsSection(TypedDict, total=False):
    """ "deca-imports": the third-party modules DECA's demo imports, and those this interpreter cannot find."""

    modules: List[str]
    missing: List[str]


class NetworkLayout(TypedDict, total=False):
    """One network's state dict in the checkpoint against DECA's layout."""

    present: bool
    type: str
    keys: int
    expected: int
    missing: List[str]
    missing_count: int
    unexpected: List[str]
    unexpected_count: int
    wrong_shapes: List[str]
    wrong_count: int
    non_tensor: List[str]
    module_prefix: bool


class CheckpointLoadSection(TypedDict, total=False):
    """ "checkpoint-load": `deca_model.tar` loaded with weights_only=True, compared with DECA's layout."""

    loaded: bool
    absent: bool
    error: LoadError
    seconds: float
    top_type: str
    top_keys: List[str]
    networks: Dict[str, NetworkLayout]


# -- numpy group ------------------------------------------------------------------------------------------
class NumpySection(ImportInfo, total=False):
    """ "numpy": the import and which of chumpy's `from numpy import bool, ...` names are gone."""

    aliases_missing: List[str]


class FlameSelftestSection(TypedDict, total=False):
    """ "flame-selftest": decaenv reads a chumpy-style FLAME pickle with chumpy unimportable."""

    ok: bool
    error: Optional[str]
    where: str
    seconds: float
    chumpy_imported: bool


class FlameLoadSection(TypedDict, total=False):
    """ "flame-load": the user's FLAME file through decaenv's loader."""

    loaded: bool
    absent: bool
    file: str
    error: LoadError
    seconds: float
    kind: str
    vertices: int
    faces: int
    components: int
    joints: int
    dtype: str
    incompatible: List[str]
    template_faces: Optional[bool]
    npz_matches_pickle: bool


class RuntimePackage(ImportInfo, total=False):
    installed: bool
    dist: str


#: "runtime-packages": the runtime extra's packages (scipy, skimage, PIL) and gdown, by module name.
RuntimePackagesSection = Dict[str, RuntimePackage]


class PatchRow(TypedDict, total=False):
    id: str
    title: str
    reason: str
    link: Optional[str]
    package: Optional[str]
    version: Optional[str]
    state: str
    detail: str
    needed: bool
    active: bool


class CompatSection(Unavailable, total=False):
    """ "compat": decaenv's compatibility shims and their state here."""

    patches: List[PatchRow]


class ChumpySection(ImportInfo, total=False):
    """ "chumpy": installed, importable, and why not ("getargspec", "numpy-alias", "other")."""

    installed: bool
    cause: str


# -- build ------------------------------------------------------------------------------------------------
class BuildTarget(TypedDict, total=False):
    """One compiled probe: CPU or CUDA."""

    target: str
    ok: bool
    status: str
    seconds: float
    diagnosis: Optional[Dict[str, Any]]
    verification: str
    log: str
    ran: bool
    ran_cuda: bool
    error: str


class BuildSection(TypedDict, total=False):
    """ "build": the rasterizer's real sources (or a minimal op) compiled in a scratch folder."""

    sources: str
    api: bool
    compiler: str
    cuda_home: Optional[str]
    torch: str
    cpu: Optional[BuildTarget]
    cpu_skipped: Optional[str]
    cuda: Optional[BuildTarget]
    cuda_skipped: Optional[str]


#: Section name -> its contract (the names of `decaenv.doctor.worker.SECTION_SPECS`).
SECTION_TYPES: Dict[str, Any] = {
    "torch": TorchSection,
    "cuda": CudaSection,
    "torch-load": TorchLoadSection,
    "rasterizer": RasterizerSection,
    "pytorch3d": Pytorch3dSection,
    "face-alignment": FaceAlignmentSection,
    "detectors": DetectorsSection,
    "checkpoint-load": CheckpointLoadSection,
    "numpy": NumpySection,
    "flame-selftest": FlameSelftestSection,
    "flame-load": FlameLoadSection,
    "runtime-packages": RuntimePackagesSection,
    "compat": CompatSection,
    "deca-imports": DecaImportsSection,
    "chumpy": ChumpySection,
    "build": BuildSection,
}
