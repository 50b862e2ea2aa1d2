"""The data manifest (`manifests/deca.toml`): parse, validate and expose it as frozen dataclasses.

Where it is read from, first match wins: the `path` argument; `$DECAENV_MANIFEST` (mirrors, tests);
the copy shipped in the wheel (`decaenv/manifests/deca.toml`); the repository's `manifests/deca.toml`
(editable checkout). Whatever the origin, the same schema checks apply.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from decaenv.errors import DataError, UsageError
from decaenv.fetch.placement import requirement_met, torch_hub_checkpoints

SCHEMA_VERSION = 1
ENV_MANIFEST = "DECAENV_MANIFEST"
SOURCE_KINDS = ("https", "gdrive", "form-post", "manual")
GDRIVE_URL = "https://drive.google.com/uc?export=download&id={id}"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{8,63}$")
#: Where an entry's `dest` is relative to: the data dir (default), or torch hub's checkpoint cache, where
#: face_alignment (and every `torch.hub.load_state_dict_from_url` user) looks for its weights.
ROOTS = ("data", "torch-hub")


@dataclass(frozen=True)
class License:
    """A licence shown (and accepted once per data dir) before a download."""

    id: str
    name: str
    url: str
    account: bool = False
    register: Optional[str] = None


@dataclass(frozen=True)
class CredentialRealm:
    """An account used by `form-post` sources (where its username/password come from)."""

    id: str
    name: str
    username_env: str
    password_env: str
    register: Optional[str] = None


@dataclass(frozen=True)
class Source:
    """One place a file can come from (tried in manifest order).

    Attributes:
        kind: "https", "gdrive", "form-post" or "manual".
        url: the URL (for gdrive: the endpoint template, "{id}" replaced; default Google's).
        drive_id: Google Drive file id (gdrive only).
        archive, member: the payload is `archive`; the wanted file is its member `member` (matched by
            full path or, when unique, by base name).
        credentials: credential realm id (form-post).
        fields: form field names {"username": ..., "password": ...} (form-post).
        code, note: extraction code and a human note (manual mirrors).
        approx_size: estimated payload bytes (disk-space preflight only).
    """

    kind: str
    url: Optional[str] = None
    drive_id: Optional[str] = None
    archive: Optional[str] = None
    member: Optional[str] = None
    credentials: Optional[str] = None
    fields: Tuple[Tuple[str, str], ...] = ()
    code: Optional[str] = None
    note: Optional[str] = None
    approx_size: Optional[int] = None

    @property
    def download_url(self) -> str:
        """The URL requests go to first (gdrive: the endpoint with the id filled in)."""
        if self.kind == "gdrive":
            return (self.url or GDRIVE_URL).replace("{id}", self.drive_id or "")
        return self.url or ""

    def field(self, name: str) -> str:
        """Form field name for `name` ("username"/"password"); defaults to the name itself."""
        return dict(self.fields).get(name, name)

    def browser_url(self) -> str:
        """Where a person gets the file in a browser (Drive: the file's page, not the API endpoint)."""
        if self.kind == "gdrive":
            return f"https://drive.google.com/file/d/{self.drive_id}/view"
        return self.url or ""

    def describe(self) -> str:
        """One line for manual instructions: URL, extraction code, note."""
        text = self.browser_url()
        if self.code:
            text += f" (extraction code {self.code})"
        if self.note:
            text += f" [{self.note}]"
        return text


@dataclass(frozen=True)
class Validator:
    """A content check: `kind` names a function in `decaenv.fetch.validators`; `params` its arguments."""

    kind: str
    params: Tuple[Tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


@dataclass(frozen=True)
class Entry:
    """One file of the data dir."""

    id: str
    dest: str
    license: License
    sources: Tuple[Source, ...]
    description: str = ""
    default: bool = False
    size: Optional[int] = None
    approx_size: Optional[int] = None
    sha256: Optional[str] = None
    validator: Optional[Validator] = None
    post: Tuple[str, ...] = ()
    aliases: Tuple[str, ...] = ()
    root: str = "data"
    sha256_prefix: Optional[str] = None
    group: Optional[str] = None
    requires: Optional[str] = None

    @property
    def name(self) -> str:
        """The destination's file name."""
        return PurePosixPath(self.dest).name

    @property
    def manual_only(self) -> bool:
        return all(s.kind == "manual" for s in self.sources)

    def path(self, data_dir: os.PathLike) -> Path:
        """Absolute destination: inside `data_dir`, or inside torch hub's checkpoint cache (`root = "torch-hub"`)."""
        base = torch_hub_checkpoints() if self.root == "torch-hub" else Path(data_dir)
        return base.joinpath(*PurePosixPath(self.dest).parts)

    @property
    def shown_dest(self) -> str:
        """`dest` as shown in tables and result lines ("hub:<name>" for torch hub's cache)."""
        return f"hub:{self.dest}" if self.root == "torch-hub" else self.dest

    def prefix_mismatch(self, digest: str) -> Optional[str]:
        """Why `digest` cannot be this file (its published sha256 prefix differs), or None."""
        if self.sha256_prefix and not digest.startswith(self.sha256_prefix):
            return (f"sha256 {digest[:16]}… does not start with {self.sha256_prefix}, the hash prefix in its "
                    "published file name")
        return None

    def applies(self) -> bool:
        """True when the entry has no `requires`, or the installed distribution satisfies it (e.g. the
        2DFAN4 file of the face_alignment release that is installed)."""
        return self.requires is None or requirement_met(self.requires) is not False

    def manual_sources(self) -> List[Source]:
        return [s for s in self.sources if s.kind == "manual"]

    def manual_text(self) -> str:
        """The 'download by hand' line: every place the file can be fetched from in a browser."""
        places: Dict[str, str] = {}
        for source in self.sources:
            if source.kind in ("manual", "https", "gdrive"):
                url = source.browser_url()
                if url not in places or source.kind == "manual":
                    places[url] = source.describe()
        archive = next((s.archive for s in self.sources if s.archive), None)
        what = f"{archive} (holds {self.name})" if archive else self.name
        return f"get {what} from " + " or ".join(places.values()) if places else ""


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest."""

    name: str
    schema: int
    description: str
    entries: Tuple[Entry, ...]
    licenses: Mapping[str, License] = field(default_factory=dict)
    credentials: Mapping[str, CredentialRealm] = field(default_factory=dict)
    origin: str = ""

    def get(self, entry_id: str) -> Entry:
        """The entry with this id (UsageError naming the known ids otherwise)."""
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise UsageError(f"unknown file id {entry_id!r}",
                         hint="known ids: " + ", ".join([e.id for e in self.entries] + sorted(self.groups())))

    def defaults(self) -> List[Entry]:
        """What reconstruction needs (`default = true`, and `requires` met)."""
        return [e for e in self.entries if e.default and e.applies()]

    def groups(self) -> Dict[str, List[Entry]]:
        """Group name -> its entries (manifest order), e.g. "fan" -> face_alignment's weight files."""
        out: Dict[str, List[Entry]] = {}
        for entry in self.entries:
            if entry.group:
                out.setdefault(entry.group, []).append(entry)
        return out

    def resolve(self, name: str) -> List[Entry]:
        """The entries a command-line name means: a file id, or a group (its members that apply to the
        installed packages — all of them when the package they depend on is not installed at all)."""
        group = self.groups().get(name)
        if group is None or any(e.id == name for e in self.entries):
            return [self.get(name)]
        applying = [e for e in group if e.applies()]
        installed = [e for e in group if e.requires and requirement_met(e.requires) is not None]
        return applying if installed else group

    def select(self, ids: Sequence[str] = (), *, everything: bool = False) -> List[Entry]:
        """Entries for the given ids or groups (in manifest order), all with `everything`, else the defaults."""
        if everything:
            return list(self.entries)
        if not ids:
            return self.defaults()
        wanted = {e.id for i in ids for e in self.resolve(i)}
        return [e for e in self.entries if e.id in wanted]


# ------------------------------------------------------------------------------------------ locate

def packaged_manifest() -> Path:
    """The shipped `deca.toml`: the wheel's `decaenv/manifests/`, else the checkout's `manifests/`."""
    package_dir = Path(__file__).resolve().parents[1]
    for candidate in (package_dir / "manifests" / "deca.toml", package_dir.parent / "manifests" / "deca.toml"):
        if candidate.is_file():
            return candidate
    raise DataError("decaenv's data manifest (manifests/deca.toml) is missing from the installation",
                    hint="reinstall decaenv, or set DECAENV_MANIFEST to a manifest file")


def manifest_path(path: Optional[os.PathLike] = None) -> Path:
    """Which manifest file to read (see the module docstring for the order)."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_MANIFEST)
    if env:
        return Path(env).expanduser()
    return packaged_manifest()


_CACHE: Dict[Tuple[str, int], Manifest] = {}


def load_manifest(path: Optional[os.PathLike] = None) -> Manifest:
    """Read and validate a manifest (cached per file and modification time).

    Raises:
        DataError: the file is missing, is not TOML, or breaks the schema (message names the entry).
    """
    where = manifest_path(path)
    try:
        stamp = where.stat().st_mtime_ns
    except OSError:
        raise DataError(f"manifest {where} does not exist",
                        hint=f"fix ${ENV_MANIFEST} or reinstall decaenv") from None
    key = (str(where.resolve()), stamp)
    if key not in _CACHE:
        _CACHE[key] = parse_manifest(where.read_bytes().decode("utf-8"), origin=str(where))
    return _CACHE[key]


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.9/3.10
        import tomli as tomllib
    return tomllib.loads(text)


# ------------------------------------------------------------------------------------------- parse

class _Check:
    """Typed field access with error messages that name the manifest and the entry."""

    def __init__(self, origin: str, where: str, table: Mapping[str, Any]):
        self.origin, self.where, self.table = origin, where, table

    def error(self, text: str) -> DataError:
        return DataError(f"manifest {self.origin}: {self.where}: {text}",
                         hint="fix the manifest (schema: see the comment at the top of manifests/deca.toml)")

    def get(self, name: str, kind, default: Any = None, required: bool = False) -> Any:
        if name not in self.table:
            if required:
                raise self.error(f"missing field {name!r}")
            return default
        value = self.table[name]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise self.error(f"field {name!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def unknown(self, allowed: Sequence[str]) -> None:
        extra = sorted(set(self.table) - set(allowed))
        if extra:
            raise self.error(f"unknown field(s) {', '.join(extra)}")


def parse_manifest(text: str, *, origin: str = "<string>") -> Manifest:
    """Parse manifest TOML text (see manifests/deca.toml for the schema)."""
    try:
        doc = _toml_loads(text)
    except Exception as exc:  # noqa: BLE001 - tomllib/tomli raise their own TOMLDecodeError
        raise DataError(f"manifest {origin} is not valid TOML: {exc}", hint="fix its syntax") from None
    top = _Check(origin, "top level", doc)
    schema = top.get("schema", int, required=True)
    if schema != SCHEMA_VERSION:
        raise top.error(f"schema {schema} is not supported (this decaenv reads schema {SCHEMA_VERSION})")
    top.unknown(["schema", "name", "description", "licenses", "credentials", "file"])
    licenses = {lid: _license(origin, lid, t) for lid, t in top.get("licenses", dict, {}).items()}
    realms = {rid: _realm(origin, rid, t) for rid, t in top.get("credentials", dict, {}).items()}
    entries: List[Entry] = []
    for index, table in enumerate(top.get("file", list, [])):
        entries.append(_entry(origin, index, table, licenses, realms))
    seen: Dict[str, str] = {}
    for entry in entries:
        for key in (entry.id, "dest:" + entry.dest):
            if key in seen:
                raise top.error(f"duplicate {'dest' if key.startswith('dest:') else 'id'} {key.split(':')[-1]!r}")
            seen[key] = entry.id
    clash = sorted({e.group for e in entries if e.group} & {e.id for e in entries})
    if clash:
        raise top.error(f"group {clash[0]!r} is also a file id")
    return Manifest(name=top.get("name", str, "manifest"), schema=schema,
                    description=top.get("description", str, ""), entries=tuple(entries),
                    licenses=licenses, credentials=realms, origin=origin)


def _license(origin: str, lid: str, table: Mapping[str, Any]) -> License:
    c = _Check(origin, f"licenses.{lid}", table)
    c.unknown(["name", "url", "account", "register"])
    return License(id=lid, name=c.get("name", str, required=True), url=c.get("url", str, required=True),
                   account=c.get("account", bool, False), register=c.get("register", str))


def _realm(origin: str, rid: str, table: Mapping[str, Any]) -> CredentialRealm:
    c = _Check(origin, f"credentials.{rid}", table)
    c.unknown(["name", "username_env", "password_env", "register"])
    return CredentialRealm(id=rid, name=c.get("name", str, required=True),
                           username_env=c.get("username_env", str, required=True),
                           password_env=c.get("password_env", str, required=True),
                           register=c.get("register", str))


def _dest(c: _Check, value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value or value.startswith("."):
        raise c.error(f"dest {value!r} must be a relative path inside the data dir")
    return str(path)


def _entry(origin: str, index: int, table: Mapping[str, Any], licenses: Mapping[str, License],
           realms: Mapping[str, CredentialRealm]) -> Entry:
    c = _Check(origin, f"file[{index}]", table if isinstance(table, dict) else {})
    entry_id = c.get("id", str, required=True)
    c.where = f"file {entry_id!r}"
    if not _ID.match(entry_id):
        raise c.error("id must be lower-case letters, digits and dashes")
    c.unknown(["id", "dest", "description", "default", "size", "approx_size", "sha256", "license",
               "validate", "source", "post", "aliases", "root", "sha256_prefix", "group", "requires"])
    sha = c.get("sha256", str)
    if sha is not None:
        sha = sha.lower().split(":", 1)[-1] if sha.lower().startswith("sha256:") else sha.lower()
        if not _HEX64.match(sha):
            raise c.error("sha256 must be 64 hex digits")
    lic_id = c.get("license", str, required=True)
    if lic_id not in licenses:
        raise c.error(f"license {lic_id!r} is not defined under [licenses]")
    sources = tuple(_source(c, i, s, realms) for i, s in enumerate(c.get("source", list, required=True)))
    if not sources:
        raise c.error("needs at least one [[file.source]]")
    validator = None
    spec = c.get("validate", dict)
    if spec is not None:
        kind = spec.get("kind")
        if not isinstance(kind, str):
            raise c.error("validate needs a 'kind'")
        validator = Validator(kind, tuple(sorted((k, _freeze(v)) for k, v in spec.items() if k != "kind")))
    for name in ("size", "approx_size"):
        value = c.get(name, int)
        if value is not None and value <= 0:
            raise c.error(f"{name} must be positive")
    root, prefix, requires = _placement(c, sha)
    return Entry(id=entry_id, dest=_dest(c, c.get("dest", str, required=True)), license=licenses[lic_id],
                 sources=sources, description=c.get("description", str, ""), default=c.get("default", bool, False),
                 size=c.get("size", int), approx_size=c.get("approx_size", int), sha256=sha,
                 validator=validator, post=tuple(c.get("post", list, [])),
                 aliases=tuple(c.get("aliases", list, [])), root=root, sha256_prefix=prefix,
                 group=c.get("group", str), requires=requires)


def _placement(c: _Check, sha: Optional[str]) -> Tuple[str, Optional[str], Optional[str]]:
    """(root, sha256_prefix, requires) of an entry, checked."""
    root = c.get("root", str, "data")
    if root not in ROOTS:
        raise c.error(f"root {root!r} is not one of {', '.join(ROOTS)}")
    prefix = c.get("sha256_prefix", str)
    if prefix is not None:
        prefix = prefix.lower()
        if not _HEX_PREFIX.match(prefix):
            raise c.error("sha256_prefix must be 8 to 63 hex digits")
        if sha is not None and not sha.startswith(prefix):
            raise c.error(f"sha256 does not start with its sha256_prefix {prefix}")
    group = c.get("group", str)
    if group is not None and not _ID.match(group):
        raise c.error("group must be lower-case letters, digits and dashes")
    requires = c.get("requires", str)
    if requires is not None:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(requires)
        except InvalidRequirement as exc:
            raise c.error(f"requires {requires!r} is not a requirement ({exc})") from None
    return root, prefix, requires


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _source(c: _Check, index: int, table: Any, realms: Mapping[str, CredentialRealm]) -> Source:
    s = _Check(c.origin, f"{c.where} source[{index}]", table if isinstance(table, dict) else {})
    kind = s.get("kind", str, required=True)
    if kind not in SOURCE_KINDS:
        raise s.error(f"kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    s.unknown(["kind", "url", "id", "archive", "member", "credentials", "fields", "code", "note", "approx_size"])
    url = s.get("url", str)
    if kind in ("https", "form-post", "manual") and not url:
        raise s.error(f"a {kind} source needs a url")
    if url and not re.match(r"^https?://", url):
        raise s.error(f"url {url!r} must start with https:// (http:// only for loopback test servers)")
    drive_id = s.get("id", str)
    if kind == "gdrive" and not drive_id:
        raise s.error("a gdrive source needs the Drive file id")
    realm = s.get("credentials", str)
    if kind == "form-post" and realm not in realms:
        raise s.error(f"credentials {realm!r} are not defined under [credentials]")
    archive, member = s.get("archive", str), s.get("member", str)
    if bool(archive) != bool(member):
        raise s.error("archive and member go together")
    fields = s.get("fields", dict, {})
    return Source(kind=kind, url=url, drive_id=drive_id, archive=archive, member=member, credentials=realm,
                  fields=tuple(sorted((str(k), str(v)) for k, v in fields.items())), code=s.get("code", str),
                  note=s.get("note", str), approx_size=s.get("approx_size", int))
