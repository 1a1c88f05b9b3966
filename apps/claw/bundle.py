"""The air-gapped bundle: one directory with everything an install needs and a manifest of checksums.

``manifest.json`` lists every file of the bundle with its path (relative to the bundle), sha256, size, kind
(what it is) and version. ``playbooks/bundle.yml`` gathers the files and records them here; the roles run
``verify`` on the files they are about to use before anything on a node changes. Standard library only, so
it also runs as a plain script on any Python 3.10+ (the bundle carries a copy as ``verify.py``)::

    python -m claw.bundle verify BUNDLE[/PART] [--only PREFIX ...]   # exit 1 naming each missing/changed file
    python -m claw.bundle record --kind KIND [--version V] BUNDLE PATH ...
    python -m claw.bundle npm-fetch BUNDLE --lock package-lock.json --subdir npm/openclaw-V --cpu x64 ...
    python -m claw.bundle npm-offline-lock LOCK --tarballs DIR [--output FILE]
    python -m claw.bundle pip-fetch BUNDLE --lock 'locks/runtime-{key}.txt' --subdir python --target 3.10-aarch64 ...
    python -m claw.bundle release-sums BUNDLE/ollama/V/sha256sum.txt --pinned JSON ARCHIVE ...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One file of the bundle as the manifest records it."""

    path: str
    sha256: str
    size: int
    kind: str
    version: str


@dataclass(frozen=True)
class NpmPackage:
    """One package of an npm lock: its name, version, the lock's integrity and the tarball `npm pack` writes."""

    name: str
    version: str
    integrity: str

    @property
    def tarball(self) -> str:
        return tarball_name(self.name, self.version)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(bundle: Path) -> dict[str, Entry]:
    """The manifest's entries by path; an absent manifest is an empty one."""
    path = bundle / MANIFEST
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown manifest format {data.get('format')!r} (expected {FORMAT})")
    return {item["path"]: Entry(**item) for item in data["files"]}


def write_manifest(bundle: Path, entries: dict[str, Entry]) -> bool:
    """Write the manifest (sorted, so an unchanged bundle gives the same bytes); True when it changed."""
    text = json.dumps(
        {"format": FORMAT, "files": [asdict(entries[key]) for key in sorted(entries)]}, indent=1, sort_keys=True
    )
    path = bundle / MANIFEST
    if path.exists() and path.read_text(encoding="utf-8") == text + "\n":
        return False
    partial = path.with_suffix(".partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)
    return True


def canonical(name: str) -> str:
    """A project name as indexes compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_version(filename: str) -> str:
    """The version part of a wheel's file name (name-version-...whl)."""
    return filename.split("-")[1] if filename.endswith(".whl") else ""


def _entry(bundle: Path, path: Path, kind: str, version: str) -> Entry:
    absolute = (bundle / path).resolve()
    return Entry(
        path=absolute.relative_to(bundle).as_posix(),
        sha256=sha256_file(absolute),
        size=absolute.stat().st_size,
        kind=kind,
        version=version or wheel_version(absolute.name),
    )


def record(bundle: Path, paths: Iterable[Path], kind: str, version: str = "") -> bool:
    """Add or refresh the entries of these files (inside the bundle); True when the manifest changed."""
    bundle = bundle.resolve()
    entries = read_manifest(bundle)
    for path in paths:
        entry = _entry(bundle, path, kind, version)
        entries[entry.path] = entry
    return write_manifest(bundle, entries)


def record_part(bundle: Path, part: str, versions: dict[Path, str], kind: str) -> bool:
    """Make the manifest's entries under ``part`` (a directory of the bundle) exactly these files, each with its
    version: entries of files no longer there go. True when the manifest changed."""
    bundle = bundle.resolve()
    prefix = part.rstrip("/") + "/"
    entries = {path: entry for path, entry in read_manifest(bundle).items() if not path.startswith(prefix)}
    for path, version in versions.items():
        entry = _entry(bundle, path, kind, version)
        entries[entry.path] = entry
    return write_manifest(bundle, entries)


def verify(bundle: Path, only: Iterable[str] = ()) -> list[str]:
    """Problems with the bundle's files (each names the file); the entries under `only` when it is given."""
    try:
        entries = read_manifest(bundle)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{bundle / MANIFEST}: unreadable manifest ({error})"]
    if not entries:
        return [f"{bundle / MANIFEST}: missing or empty; build the bundle with playbooks/bundle.yml"]
    prefixes = [prefix.rstrip("/") for prefix in only]
    problems = [
        f"{prefix}: the manifest lists no file there (that part was not gathered)"
        for prefix in prefixes
        if not any(_under(path, prefix) for path in entries)
    ]
    for entry in entries.values():
        if prefixes and not any(_under(entry.path, prefix) for prefix in prefixes):
            continue
        path = bundle / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: size {path.stat().st_size}, expected {entry.size}")
        elif (actual := sha256_file(path)) != entry.sha256:
            problems.append(f"{entry.path}: sha256 {actual}, expected {entry.sha256}")
    return problems


def locate(path: Path) -> tuple[Path, str]:
    """The bundle a path lies in (the nearest directory at or above it holding a manifest) and the path's
    prefix inside it; a role verifies just the part it uses with `verify <bundle>/<part>`."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if (candidate / MANIFEST).is_file():
            return candidate, path.relative_to(candidate).as_posix() if candidate != path else ""
    raise FileNotFoundError(f"no {MANIFEST} in {path} or above it: not a bundle built by playbooks/bundle.yml")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def tarball_name(name: str, version: str) -> str:
    """The file name `npm pack` gives a package: @scope/name becomes scope-name-version.tgz."""
    return f"{name.removeprefix('@').replace('/', '-')}-{version}.tgz"


def _allowed(values: list[str] | None, wanted: Iterable[str]) -> bool:
    """npm's os/cpu/libc rule: absent admits all; otherwise a listed value, or only negations not naming it."""
    if not values:
        return True
    wanted = set(wanted)
    if any(value in wanted for value in values):
        return True
    negations = [value[1:] for value in values if value.startswith("!")]
    return len(negations) == len(values) and not wanted.issubset(negations)


def npm_packages(lock: dict, cpus: Iterable[str], os_name: str = "linux", libc: str = "glibc") -> list[NpmPackage]:
    """The packages of a lock a node of these CPUs installs (each once), those shipped inside another left out."""
    cpus = list(cpus)
    seen: dict[tuple[str, str], NpmPackage] = {}
    for key, item in lock.get("packages", {}).items():
        if not key or item.get("inBundle") or "integrity" not in item or "link" in item:
            continue
        if not (_allowed(item.get("os"), [os_name]) and _allowed(item.get("cpu"), cpus)):
            continue
        if not _allowed(item.get("libc"), [libc]):
            continue
        name = item.get("name") or key.rsplit("node_modules/", 1)[-1]
        package = NpmPackage(name=name, version=item["version"], integrity=item["integrity"])
        seen.setdefault((name, package.version), package)
    return sorted(seen.values(), key=lambda package: (package.name, package.version))


def integrity_matches(path: Path, integrity: str) -> bool:
    """Whether a file matches an npm integrity string (any of its `algo-base64` hashes)."""
    for token in integrity.split():
        algorithm, _, expected = token.partition("-")
        if algorithm not in ("sha512", "sha384", "sha256", "sha1"):
            continue
        digest = hashlib.new(algorithm)
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        if base64.b64encode(digest.digest()).decode() == expected:
            return True
    return False


def _present(path: Path, integrity: str) -> bool:
    return path.is_file() and integrity_matches(path, integrity)


def _batches(items: list[NpmPackage], size: int) -> Iterator[list[NpmPackage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def npm_fetch(bundle: Path, lock_file: Path, subdir: str, cpus: Iterable[str], npm: str = "npm") -> tuple[int, int]:
    """Put every locked package for these CPUs into bundle/subdir, each checked against the lock's integrity.

    Present files that match are kept (nothing is downloaded for them); a present file that does not match is
    replaced. `npm pack` fetches from the registry the host's npm configuration names. Returns (fetched, kept).
    """
    packages = npm_packages(json.loads(lock_file.read_text(encoding="utf-8")), cpus)
    names = [package.tarball for package in packages]
    if len(set(names)) != len(names):
        raise ValueError(f"{lock_file}: two packages would share a tarball name")
    dest = bundle / subdir
    dest.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not _present(dest / p.tarball, p.integrity)]
    for batch in _batches(missing, 40):
        with tempfile.TemporaryDirectory() as scratch:  # npm pack reads no project's .npmrc there
            command = [npm, "pack", "--silent", "--pack-destination", str(dest.resolve())]
            subprocess.run(
                [*command, *(f"{p.name}@{p.version}" for p in batch)],
                cwd=scratch,
                check=True,
                stdout=subprocess.DEVNULL,
            )
    bad = [p.tarball for p in missing if not _present(dest / p.tarball, p.integrity)]
    if bad:
        for name in bad:
            (dest / name).unlink(missing_ok=True)
        raise ValueError(f"integrity mismatch against {lock_file} (removed): {', '.join(bad)}")
    root = bundle.resolve()
    entries = read_manifest(root)
    refetched = {p.tarball for p in missing}
    for package in packages:
        relative = f"{subdir.strip('/')}/{package.tarball}"
        old = entries.get(relative)
        version = f"{package.name}@{package.version}"
        if old is None or package.tarball in refetched or old.version != version:
            entries[relative] = _entry(root, Path(relative), "npm", version)
    write_manifest(root, entries)
    return len(missing), len(packages) - len(missing)


@dataclass(frozen=True)
class Board:
    """What a bundle target (``PYTHON-MACHINE``) installs on: its lock key, glibc and exact Python."""

    key: str  # <os><major>-<cpu>-py<XY>, as the roles name a node's lock (tools/lock_runtime.py TARGETS)
    glibc: int  # the minor of 2.x: the newest manylinux_2_x tag the board's glibc runs
    python_full_version: str  # the board's Python, for markers that compare the full version

    def platforms(self, machine: str) -> list[str]:
        tags = (*(f"manylinux_2_{minor}" for minor in range(self.glibc, 16, -1)), "manylinux2014")
        return [arg for tag in tags for arg in ("--platform", f"{tag}_{machine}")]


# Each target of bundle_python_targets / bundle_llamacpp_targets and the board whose lock serves it. One lock per
# Python and CPU: Raspberry Pi OS bookworm is Debian 12 (the same glibc 2.36 and Python 3.11), so the Pi 5 and a
# Debian 12 arm64 machine share 3.11-aarch64; 3.10-aarch64 is JetPack 6 (Ubuntu 22.04, glibc 2.35) on a Jetson.
BOARDS = {
    "3.11-x86_64": Board("debian12-x86_64-py311", 36, "3.11.2"),
    "3.11-aarch64": Board("debian12-aarch64-py311", 36, "3.11.2"),
    "3.10-aarch64": Board("ubuntu22-aarch64-py310", 35, "3.10.12"),
}


def board(target: str) -> Board:
    """The board of a target; a target no lock is made for is refused (ValueError naming those there are)."""
    if target not in BOARDS:
        raise ValueError(
            f"no lock for target {target!r}: the bundle knows {', '.join(BOARDS)} (PYTHON-MACHINE, as in "
            "bundle_python_targets); add the board to TARGETS in tools/lock_runtime.py and to BOARDS in "
            "apps/claw/bundle.py, then run make lock"
        )
    return BOARDS[target]


def target_environment(target: str) -> dict[str, str]:
    """Every environment-marker variable as a node of this target has it: nothing is taken from the controller."""
    python_version, _, machine = target.partition("-")
    if not re.fullmatch(r"3\.[0-9]+", python_version) or not machine:
        raise ValueError(f"not a target: {target!r} (expected PYTHON-MACHINE, e.g. 3.11-aarch64)")
    full = BOARDS[target].python_full_version if target in BOARDS else f"{python_version}.0"
    return {
        "python_version": python_version,
        "python_full_version": full,
        "implementation_version": full,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": machine,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_release": "",
        "platform_version": "",
    }


def target_requirements(text: str, target: str) -> str:
    """The entries (a requirement with its continuation lines, e.g. --hash) whose markers hold on the target
    (``PYTHON-MACHINE``), without their markers.

    The markers are judged here, for the target's Python and CPU: pip judges a marker by the Python it runs on, not
    by --python-version, so a marker left in the file would make a 3.11 controller drop a Jetson's 3.10 pins.
    """
    try:
        from packaging.markers import Marker
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.markers import Marker

    environment = target_environment(target)
    kept: list[str] = []
    for entry in re.split(r"(?<!\\)\n", text):
        head, newline, rest = entry.partition("\n")
        code = head.split("#", 1)[0].rstrip()
        if not code:
            continue
        continued = " \\" if code.endswith("\\") else ""
        requirement, _, marker = code.removesuffix("\\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        kept.append(requirement.rstrip() + continued + newline + rest)
    return "\n".join(kept) + "\n"


def pinned(text: str) -> set[tuple[str, str]]:
    """(canonical name, version) of every exact pin of a requirement file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, re.MULTILINE)
    return {(canonical(name), version) for name, version in found}


def target_locks(lock: str, targets: Iterable[str]) -> dict[str, Path]:
    """The lock of each target: ``lock`` with ``{key}`` replaced by the target's board key (the same file for every
    target without one). Every target must have its board and its lock file before anything is downloaded."""
    locks = {}
    for target in targets:
        key = board(target).key
        path = Path(lock.replace("{key}", key))
        if not path.is_file():
            raise ValueError(f"no lock for target {target} ({key}): {path} is not a file")
        locks[target] = path
    return locks


def pip_fetch(bundle: Path, lock: str | Path, subdir: str, targets: Iterable[str], kind: str) -> list[str]:
    """Download the wheels of each target's hash-pinned lock (``lock``, ``{key}`` standing for the target's board
    key) into bundle/subdir, for the target's Python, CPU and glibc.

    Each target is first tried with no index at all against what the directory holds: when that succeeds, nothing
    is downloaded. Otherwise pip downloads from the indexes the host's pip configuration names; it refuses any file
    whose hash is not in the lock. Returns the targets that needed a download.
    """
    locks = target_locks(str(lock), targets)
    dest = (bundle / subdir).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    downloaded = []
    wanted_pins: set[tuple[str, str]] = set()
    for target, path in locks.items():
        machine = target.partition("-")[2]
        text = target_requirements(path.read_text(encoding="utf-8"), target)
        wanted_pins |= pinned(text)
        with tempfile.TemporaryDirectory() as scratch:
            wanted = Path(scratch) / "requirements.txt"
            wanted.write_text(text, encoding="utf-8")
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                "--only-binary", ":all:", "--require-hashes", "--python-version", target.partition("-")[0],
                *BOARDS[target].platforms(machine), "--dest", str(dest),
                "--requirement", str(wanted),
            ]  # fmt: skip
            offline = [*command, "--no-index", "--find-links", str(dest)]
            if subprocess.run(offline, capture_output=True).returncode != 0:
                subprocess.run(command, check=True)
                downloaded.append(target)
    wheels = [
        wheel
        for wheel in dest.glob("*.whl")
        if (canonical(wheel.name.split("-")[0]), wheel_version(wheel.name)) in wanted_pins
    ]
    record(bundle, sorted(wheels), kind)
    return downloaded


def release_sums(text: str, source: str = "sha256sum.txt") -> dict[str, str]:
    """``{archive: sha256}`` of a release's sha256sum.txt; a malformed or contradictory line is a ValueError. Read by
    the ollama role's own parser (roles/ollama/library/ollama_release.py), so the bundle and the role never read the
    file differently. Only the repository's copy of this tool runs it (playbooks/bundle.yml)."""
    path = Path(__file__).resolve().parents[2] / "roles" / "ollama" / "library" / "ollama_release.py"
    spec = importlib.util.spec_from_file_location("ollama_release", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"{path}: release-sums runs from the repository (playbooks/bundle.yml)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sha256sums(text, source)


def release_checksums(sums_file: Path, pinned: dict[str, str], archives: Iterable[str]) -> dict[str, str]:
    """The sha256 each archive is fetched against: the pinned value first, else the release's sha256sum.txt (an
    absent file lists nothing). An archive neither gives, or a pinned value the release's file contradicts, is a
    ValueError: nothing is downloaded then."""
    published = release_sums(sums_file.read_text(encoding="utf-8"), str(sums_file)) if sums_file.is_file() else {}
    checksums: dict[str, str] = {}
    missing, conflicts = [], []
    for name in archives:
        sha = str(pinned.get(name, "")).lower() or published.get(name, "")
        if not sha:
            missing.append(name)
        elif name in published and published[name] != sha:
            conflicts.append(name)
        checksums[name] = sha
    if conflicts:
        raise ValueError(
            f"{sums_file} disagrees with the sha256 pinned for {', '.join(conflicts)}: one of them is wrong, so "
            "nothing is downloaded"
        )
    if missing:
        where = f"{sums_file} does not list" if sums_file.is_file() else f"there is no {sums_file} to give"
        raise ValueError(f"no sha256 is pinned for {', '.join(missing)}, and {where} it")
    return checksums


def offline_lock(lock: dict, tarball_dir: str) -> dict:
    """A copy of the lock whose packages resolve to local tarballs: `npm ci --offline` then needs no registry
    and still checks every tarball against the lock's integrity."""
    packages = {}
    for key, item in lock.get("packages", {}).items():
        if key and "integrity" in item and not item.get("inBundle"):
            name = item.get("name") or key.rsplit("node_modules/", 1)[-1]
            item = {**item, "resolved": f"file:{tarball_dir}/{tarball_name(name, item['version'])}"}
        packages[key] = item
    return {**lock, "packages": packages}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw.bundle", description="The air-gapped bundle's manifest")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check every file the manifest lists (exit 1 on a problem)")
    check.add_argument("bundle", type=Path, help="the bundle, or a directory inside it (checks only that part)")
    check.add_argument(
        "--plain-ok", action="store_true", help="accept a directory outside any bundle (no manifest to check)"
    )
    check.add_argument("--only", action="append", default=[], help="check only the entries under this path")
    add = commands.add_parser("record", help="add or refresh files in the manifest")
    add.add_argument("bundle", type=Path)
    add.add_argument("--kind", required=True)
    add.add_argument("--version", default="", help="default: a wheel's version from its name")
    add.add_argument("paths", nargs="*", type=Path)
    fetch = commands.add_parser("npm-fetch", help="fetch a lock's packages into the bundle, integrity checked")
    fetch.add_argument("bundle", type=Path)
    fetch.add_argument("--lock", required=True, type=Path)
    fetch.add_argument("--subdir", required=True)
    fetch.add_argument("--cpu", action="append", required=True, help="npm CPU names: x64, arm64")
    wheels = commands.add_parser("pip-fetch", help="download each target's wheels from its board's hash-pinned lock")
    wheels.add_argument("bundle", type=Path)
    wheels.add_argument(
        "--lock",
        "--requirement",
        dest="lock",
        required=True,
        help="the lock file; {key} stands for each target's board key (e.g. locks/runtime-{key}.txt)",
    )
    wheels.add_argument("--subdir", required=True)
    wheels.add_argument("--target", action="append", required=True, help="PYTHON-MACHINE, e.g. 3.11-aarch64")
    wheels.add_argument("--kind", required=True)
    sums = commands.add_parser("release-sums", help="the sha256 of release archives: pinned, else sha256sum.txt")
    sums.add_argument("sums", type=Path, help="the release's sha256sum.txt (may be absent: it lists nothing then)")
    sums.add_argument("--pinned", default="{}", help="JSON {archive: sha256} pinned in the repository")
    sums.add_argument("archives", nargs="+")
    offline = commands.add_parser("npm-offline-lock", help="write a lock that resolves to local tarballs")
    offline.add_argument("lock", type=Path)
    offline.add_argument("--tarballs", required=True, help="directory of the tarballs where npm runs")
    offline.add_argument("--output", default="-", help="file to write (default: standard output)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "verify":
        try:
            bundle, prefix = locate(args.bundle)
        except FileNotFoundError as error:
            if args.plain_ok and args.bundle.is_dir():
                print(f"{args.bundle}: not inside a bundle; its files are checked against the pins that use them")
                return 0
            print(f"bundle: {error}", file=sys.stderr)
            return 1
        only = [f"{prefix}/{part}" if prefix else part for part in args.only] or ([prefix] if prefix else [])
        problems = verify(bundle, only)
        for problem in problems:
            print(f"bundle {args.bundle}: {problem}", file=sys.stderr)
        if not problems:
            print(f"bundle {args.bundle}: every file matches {MANIFEST}")
        return 1 if problems else 0
    if args.command == "record":
        paths = [path if path.is_absolute() else args.bundle / path for path in args.paths]
        print("changed" if record(args.bundle, paths, args.kind, args.version) else "unchanged")
        return 0
    if args.command == "npm-fetch":
        try:
            fetched, kept = npm_fetch(args.bundle, args.lock, args.subdir, args.cpu, os.environ.get("NPM", "npm"))
        except (ValueError, subprocess.CalledProcessError) as error:
            print(f"bundle {args.bundle}: {error}", file=sys.stderr)
            return 1
        print(f"fetched {fetched}, kept {kept}")
        return 0
    if args.command == "pip-fetch":
        try:
            downloaded = pip_fetch(args.bundle, args.lock, args.subdir, args.target, args.kind)
        except (ValueError, subprocess.CalledProcessError) as error:
            print(f"bundle {args.bundle}: {error}", file=sys.stderr)
            return 1
        print(f"downloaded for {', '.join(downloaded)}" if downloaded else "nothing downloaded")
        return 0
    if args.command == "release-sums":
        try:
            print(json.dumps(release_checksums(args.sums, json.loads(args.pinned), args.archives), sort_keys=True))
        except ValueError as error:
            print(f"release-sums: {error}", file=sys.stderr)
            return 1
        return 0
    lock = json.loads(args.lock.read_text(encoding="utf-8"))
    text = json.dumps(offline_lock(lock, args.tarballs), indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
