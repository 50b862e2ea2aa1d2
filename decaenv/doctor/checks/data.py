"""Checks of the `data` category: the data dir, the FLAME model, `deca_model.tar`, the manifest's other files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

from decaenv.deca_layout import CHECKPOINT_FILE, FLAME_FILE, USER_FILES, has_flame
from decaenv.doctor import hints, subsystems
from decaenv.doctor.model import CheckResult, FixAction, fail, fix_it, ok, warn
from decaenv.doctor.registry import check

MIN_FREE_BYTES = 1 << 30
DECA_MODEL_BYTES = 434_000_000  # the released file (with the detail-stage optimizer state), ≈ 414 MiB
LEGACY_TORCH_MAGIC = bytes.fromhex("6cfc9c46f9206aa850 19".replace(" ", ""))  # 0x1950a86a20f9469cfc6c, little end.
OTHER_FLAME_VARIANTS = {
    "female_model.pkl": "the female model is not what DECA's checkpoint was trained with",
    "male_model.pkl": "the male model is not what DECA's checkpoint was trained with",
    "flame2023.pkl": "FLAME 2023 differs from FLAME 2020, which DECA's checkpoint was trained with",
    "flame2023_no_jaw.pkl": "FLAME 2023 differs from FLAME 2020, which DECA's checkpoint was trained with",
}
FLAME_ALIASES = ("generic_model2020.pkl", "flame.pkl", "FLAME_NEUTRAL.pkl", "flame2023.pkl", "flame2023_no_jaw.pkl",
                 "female_model.pkl", "male_model.pkl", "FLAME2020/generic_model.pkl")
FLAME_GET = ("Register at https://flame.is.tue.mpg.de/ (licence required), then let decaenv download FLAME 2020 "
             "(password from $DECAENV_FLAME_PASSWORD or a prompt), or import the FLAME2020.zip you downloaded.",
             "decaenv fetch flame --username YOUR_FLAME_LOGIN",
             "decaenv fetch --from ~/Downloads/FLAME2020.zip")


def _free_space(path: Path) -> Tuple[Path, int]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe, shutil.disk_usage(str(probe)).free


@check("data-dir", title="Data folder", category="data", fm=("FM29",),
       symptoms=("FileNotFoundError: [Errno 2] No such file or directory: './data/generic_model.pkl'",
                 "OSError: [Errno 28] No space left on device"),
       cause="DECA reads everything from ./data; the downloads need about 0.5 GB and a writable folder.",
       fix="Use --data-dir / DECAENV_DATA_DIR to point at a writable folder with >= 1 GB free.")
def check_data_dir(ctx) -> CheckResult:
    """The data folder: where it is, writable, enough free disk."""
    path = Path(ctx.data_dir)
    existing, free = _free_space(path)
    data = {"path": str(path), "source": ctx.data_dir_source, "exists": path.is_dir(), "free_bytes": free}
    where = f"{path} ({ctx.data_dir_source})"
    if not os.access(str(existing), os.W_OK):
        return fail(f"{where} is not writable (checked {existing})", data=data,
                    remediation=fix_it("Choose a writable folder.", "decaenv --data-dir ~/deca-data doctor"))
    if free < MIN_FREE_BYTES:
        return fail(f"only {free / 2**30:.2f} GB free at {existing}; DECA's files need about 0.5 GB (>= 1 GB advised)",
                    data=data, remediation=fix_it("Free disk space or choose another folder with --data-dir."))
    state = "" if path.is_dir() else " (does not exist yet; `decaenv fetch` creates it)"
    return ok(f"{where}{state}, {free / 2**30:.0f} GB free", data=data)


def _flame_alias(data_dir: Path) -> Optional[str]:
    return next((name for name in FLAME_ALIASES if (data_dir / name).is_file()), None)


@check("flame-model", title="FLAME model", category="data", probes=("flame-load",), cache=("site", "data"),
       fm=("FM13", "FM14", "FM29"),
       symptoms=("FileNotFoundError: ... data/generic_model.pkl", "ModuleNotFoundError: No module named 'chumpy'",
                 "UnpicklingError: invalid load key, '<'."),
       cause="generic_model.pkl comes from the licence-gated FLAME 2020 download; zips unpack into FLAME2020/, "
             "other projects rename it, and FLAME 2023 is not what DECA was trained with.",
       fix="Put FLAME 2020's generic_model.pkl in the data folder (decaenv fetch --from FLAME2020.zip); decaenv "
           "loads it without chumpy and can convert it to a pickle-free npz.")
def check_flame(ctx) -> CheckResult:
    """Load the FLAME file through decaenv's loader (in a subprocess) and validate it for DECA."""
    data_dir = Path(ctx.data_dir)
    if not has_flame(data_dir):
        alias = _flame_alias(data_dir)
        if alias and alias in OTHER_FLAME_VARIANTS:
            return fail(f"found {alias}, but DECA needs FLAME 2020's generic model (generic_model.pkl): "
                        f"{OTHER_FLAME_VARIANTS[alias]}", [f"in {data_dir}"], data={"present": False, "alias": alias},
                        remediation=fix_it(*FLAME_GET))
        if alias:
            target = data_dir / FLAME_FILE
            return fail(f"found {alias} but DECA reads generic_model.pkl", [f"in {data_dir}"],
                        data={"present": False, "alias": alias},
                        remediation=fix_it("Copy (or rename) the FLAME 2020 generic model to generic_model.pkl.",
                                           f"cp {hints.quote(str(data_dir / alias))} {hints.quote(str(target))}"))
        return fail(f"no FLAME model in {data_dir} (generic_model.pkl)", data={"present": False},
                    remediation=fix_it(*FLAME_GET))
    info = ctx.section("flame-load")
    source = info.get("file", "")
    if not info.get("loaded"):
        err = info.get("error", {})
        return fail(f"{Path(source).name} cannot be loaded: {err.get('message')}",
                    data={"present": True, "loaded": False},
                    remediation=fix_it(err.get("hint") or "Replace it with FLAME 2020's generic_model.pkl.",
                                       *FLAME_GET[1:]))
    data = {k: info.get(k) for k in ("file", "kind", "vertices", "faces", "components", "joints")}
    shape = (f"{info['vertices']} vertices, {info['faces']} faces, {info['components']} shape+expression "
             f"components, {info['joints']} joints")
    if info.get("incompatible"):
        return fail(f"{Path(source).name} is not usable with DECA's checkpoint: {info['incompatible'][0]}",
                    [shape] + info["incompatible"][1:], data=data, remediation=fix_it(*FLAME_GET))
    details = [shape, f"loaded with decaenv's chumpy-free loader in {info.get('seconds', 0):.2f} s"]
    fixes = ()
    pkl = data_dir / FLAME_FILE
    if source.endswith(".pkl"):
        details.append("convert it once to a pickle-free generic_model.npz: `decaenv doctor --fix`")
        fixes = (FixAction("convert-flame", f"convert {pkl.name} to generic_model.npz",
                           {"src": str(pkl), "dst": str(pkl.with_suffix('.npz'))}),)
    if info.get("npz_matches_pickle") is False:
        return warn("generic_model.npz was converted from a different generic_model.pkl", details, data=data,
                    fixes=(FixAction("convert-flame", "re-convert generic_model.pkl to generic_model.npz",
                                     {"src": str(pkl), "dst": str(pkl.with_suffix('.npz'))}),),
                    remediation=fix_it("Convert again (or delete the npz).", "decaenv doctor --fix"))
    if info.get("template_faces") is False:
        details.append("DECA's landmark embedding and UV maps index FLAME 2020's triangles")
        return fail(f"{Path(source).name} and head_template.obj have different triangles: landmarks and "
                    "textures would land on the wrong faces", details, data=data, remediation=fix_it(
                        "Use FLAME 2020's generic model with DECA's own head_template.obj (synthetic models: "
                        "`decaenv selftest --make-assets DIR --topology-from DECA_DATA`).", *FLAME_GET[1:]))
    if info.get("kind") in ("female", "male"):
        return warn(f"{Path(source).name} is the {info['kind']} model; DECA was trained with the generic one",
                    details, data=data, remediation=fix_it(*FLAME_GET))
    return ok(f"{Path(source).name}: FLAME 2020 {info.get('kind')} model ({info['vertices']} v, {info['faces']} f, "
              f"{info['components']} components)", details, data=data, fixes=fixes)


def classify_checkpoint(path: Path) -> Tuple[str, str]:
    """What `deca_model.tar` really is, from its bytes: ("zip"|"legacy"|"html"|"empty"|"truncated"|"tar"|
    "gzip"|"lfs-pointer"|"unknown", detail)."""
    size = path.stat().st_size
    if size == 0:
        return "empty", "0 bytes"
    with open(path, "rb") as fh:
        head = fh.read(65536)
    text = head.lstrip()[:2048].lower()
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<?xml")) or text.startswith(b"<"):
        quota = b"too many users" in head.lower() or b"quota" in head.lower()
        scan = b"virus scan" in head.lower() or b"can't scan" in head.lower()
        why = "Google Drive quota page" if quota else "Google Drive virus-scan/confirm page" if scan else "an HTML page"
        return "html", why
    if head.startswith(b"version https://git-lfs"):
        return "lfs-pointer", "a git-lfs pointer file"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            return "truncated", f"zip without a complete central directory ({exc})"
        if not any(n.endswith("data.pkl") for n in names):
            return "unknown", "a zip archive that is not a torch checkpoint (no data.pkl)"
        return "zip", f"torch zip checkpoint, {len(names)} entries"
    if head.startswith(b"\x80") and LEGACY_TORCH_MAGIC in head[:32]:
        return "legacy", "legacy torch serialization"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar", "a tar archive (DECA's file is not one, despite its name)"
    if head.startswith(b"\x1f\x8b"):
        return "gzip", "a gzip file"
    return "unknown", f"unrecognised content (starts with {head[:8]!r})"


@check("deca-model", title="deca_model.tar (file)", category="data", fm=("FM30", "FM31", "FM37"),
       symptoms=("_pickle.UnpicklingError: invalid load key, '<'.", "EOFError: Ran out of input",
                 "tar: This does not look like a tar archive",
                 "PytorchStreamReader failed reading zip archive: failed finding central directory"),
       cause="Google Drive sometimes serves an HTML quota/confirm page instead of the file, downloads get "
             "truncated, and the .tar name invites untarring a torch checkpoint.",
       fix="Do not untar it; re-download it (decaenv fetch deca-model, or in a browser) and check its size.")
def check_deca_model(ctx) -> CheckResult:
    """Present, and really a torch checkpoint by its bytes (not HTML, not truncated, not a tar)."""
    path = Path(ctx.data_dir) / CHECKPOINT_FILE
    refetch = fix_it("Download it again (it is a torch checkpoint: do not untar it).", "decaenv fetch deca-model")
    fetch = (FixAction("fetch", "fetch deca_model.tar", {"ids": ["deca-model"]}),)
    if not path.is_file():
        return fail(f"no deca_model.tar in {path.parent}", data={"present": False}, remediation=refetch, fixes=fetch)
    kind, detail = classify_checkpoint(path)
    size = path.stat().st_size
    data = {"present": True, "format": kind, "bytes": size}
    if kind in ("zip", "legacy"):
        note = [] if size > 0.9 * DECA_MODEL_BYTES else [
            f"{size / 1e6:.0f} MB: smaller than the released file (~{DECA_MODEL_BYTES / 1e6:.0f} MB); fine if it "
            "holds the three networks"]
        return ok(f"{detail}, {size / 1e6:.0f} MB", note, data=data)
    what = {"html": f"an HTML page ({detail}), not the model: the download failed",
            "empty": "empty (0 bytes): the download failed",
            "truncated": f"truncated: {detail}", "tar": detail,
            "lfs-pointer": f"{detail}, not the model", "gzip": f"{detail}, not DECA's checkpoint",
            "unknown": detail}[kind]
    return fail(f"deca_model.tar is {what}", [f"{size} bytes"], data=data, remediation=refetch, fixes=fetch)


@check("deca-model-load", title="deca_model.tar (weights)", category="data", requires=("deca-model", "torch"),
       probes=("checkpoint-load",), cache=("site", "data"), fm=("FM31", "FM33", "FM34"),
       symptoms=("Weights only load failed", "Attempting to deserialize object on a CUDA device",
                 "Missing key(s) in state_dict"),
       cause="The checkpoint must load with weights_only=True on any device and hold E_flame, E_detail and "
             "D_detail with DECA's key names and shapes.",
       fix="Use the official deca_model.tar; decaenv loads it with weights_only=True and map_location='cpu'.")
def check_deca_model_load(ctx) -> CheckResult:
    """Load with weights_only=True on the CPU (subprocess) and compare the three state dicts with DECA's layout."""
    info = ctx.section("checkpoint-load")
    if not info.get("loaded"):
        err = info.get("error", {})
        return fail(f"torch.load(weights_only=True) fails: {err.get('type')}: {err.get('message', '')[:300]}",
                    data={"loaded": False},
                    remediation=fix_it("Re-download the official file; if it is trusted and hash-verified but holds "
                                       "extra objects, report it to decaenv.", "decaenv fetch deca-model"))
    networks = info.get("networks")
    if networks is None:
        return fail(f"the checkpoint holds a {info.get('top_type')}, not DECA's dictionary", data={"loaded": True},
                    remediation=fix_it("Use the official deca_model.tar.", "decaenv fetch deca-model"))
    problems: List[str] = []
    details = [f"loaded in {info.get('seconds', 0):.1f} s; top-level keys: {', '.join(info.get('top_keys', []))}"]
    for name, n in networks.items():
        if not n.get("present"):
            problems.append(f"{name} is missing")
            continue
        if n.get("module_prefix"):
            problems.append(f"{name} keys start with 'module.' (saved from DataParallel)")
        if n.get("missing_count") or n.get("wrong_count") or n.get("unexpected_count") or n.get("non_tensor"):
            problems.append(f"{name}: {n.get('missing_count', 0)} missing, {n.get('unexpected_count', 0)} unexpected, "
                            f"{n.get('wrong_count', 0)} wrong-shape keys")
            details += [f"  missing: {k}" for k in n.get("missing", [])[:3]] + \
                       [f"  shape: {k}" for k in n.get("wrong_shapes", [])[:3]]
        else:
            details.append(f"{name}: {n['keys']} keys, all names and shapes as DECA's")
    data = {"loaded": True, "problems": problems}
    if problems:
        return fail(f"not DECA's checkpoint layout: {problems[0]}", details + problems[1:], data=data,
                    remediation=fix_it("Use the official deca_model.tar (DECA v2, trained with FLAME 2020).",
                                       "decaenv fetch deca-model"))
    return ok("E_flame, E_detail and D_detail load with weights_only=True and match DECA's keys and shapes",
              details, data=data)


SKIP_DESTS = USER_FILES


@check("data-files", title="Other data files", category="data", cache=("data",), fm=("FM35", "FM36"),
       symptoms=("No such file or directory: '.../data/head_template.obj'", "Mtl file does not exist",
                 "FLAME_albedo_from_BFM.npz"),
       cause="DECA needs several public topology files next to the licensed ones; the texture model is optional.",
       fix="decaenv fetch (verifies size and sha256 of every file in the manifest).")
def check_data_files(ctx) -> CheckResult:
    """Every other manifest file: present, size, sha256 and content (decaenv.fetch's own `verify_entry`, the
    validators `decaenv fetch` and the runtime apply)."""
    status = subsystems.manifest_status(str(ctx.data_dir), hash_only=SKIP_DESTS)
    if status.get("error"):
        return fail(f"the data manifest cannot be read: {status['error']}", data={"files": []},
                    remediation=fix_it("Unset DECAENV_MANIFEST or fix the manifest it points at.",
                                       "unset DECAENV_MANIFEST"))
    files = [f for f in status["files"] if f["dest"] not in SKIP_DESTS]
    bad = [f for f in files if f["status"] not in ("present", "verified", "hash-unknown") and f["required"]]
    optional = [f for f in files if f["status"] == "missing" and not f["required"]]
    details = [f"{f['dest']}: {f['status']}{' — ' + f['detail'] if f['detail'] else ''}" for f in files]
    data = {"files": files}
    if bad:
        ids = [f["id"] for f in bad if f["kind"] != "manual"]
        fixes = (FixAction("fetch", f"fetch {', '.join(ids)}", {"ids": ids}),) if ids else ()
        return fail(f"{len(bad)} file(s) missing or damaged: {', '.join(f['dest'] for f in bad[:4])}", details,
                    data=data, fixes=fixes,
                    remediation=fix_it("Fetch them (verified by size and sha256).",
                                       f"decaenv fetch {' '.join(ids)}" if ids else "decaenv fetch --verify"))
    hash_unknown = [f for f in files if f["status"] == "hash-unknown"]
    extra = f"; optional, not present: {', '.join(f['dest'] for f in optional)}" if optional else ""
    if hash_unknown:
        names = ", ".join(f["dest"] for f in hash_unknown)
        return warn(f"{names}: present, but no known hash to verify against{extra}", details, data=data,
                    remediation=fix_it("Let decaenv check the file and record its hash (later changes are then "
                                       "detected).", f"decaenv fetch {' '.join(f['id'] for f in hash_unknown)}"))
    return ok(f"{len(files) - len(optional)} file(s) present and verified{extra}", details, data=data)
