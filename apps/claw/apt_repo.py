"""The air-gapped bundle's apt part: a node's Debian packages, with their dependencies, as a local repository.

For a target (``debian12-x86_64``: the node's distribution, major version and CPU) this resolves the packages the
roles install, with every dependency a bare system lacks, through the controller's own apt sources and keys (its
mirrors, its signed indexes), downloads them with apt (which checks each file against the signed index), and
writes ``apt/<target>/Packages``: the upstream index's own stanzas of exactly those files, ``Filename`` pointing
beside it. A node's apt installs from that directory with no network, checking every file against the stanza's
SHA256 (role base, ``base_apt_bundle_dir``). Standard library only::

    python apt_repo.py BUNDLE --target debian12-aarch64 --package zstd ... [--bare-package prometheus ...]

``--bare-package`` names packages installed without their recommended ones (as the roles install them). Every
file is recorded in the bundle's manifest (kind ``apt``); files of an earlier gathering that are no longer wanted
are removed from the directory and the manifest. A re-run with no network works from the last gathering's indexes
and downloads nothing that is present.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

try:
    from claw.bundle import record_part
except ImportError:  # run as a script from the checkout (playbooks/bundle.yml)
    from bundle import record_part  # type: ignore[no-redef]

# The CPU names of the targets (as ansible_facts.architecture and `uname -m` give them) and dpkg's.
DPKG_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
KIND = "apt"
INDEX = "Packages"


@dataclass(frozen=True)
class Target:
    """A node's distribution, major version and CPU: ``debian12-aarch64``."""

    distribution: str
    major: str
    cpu: str

    @classmethod
    def parse(cls, text: str) -> Target:
        name, _, cpu = text.partition("-")
        distribution = name.rstrip("0123456789")
        major = name[len(distribution) :]
        if not distribution or not major or cpu not in DPKG_ARCH:
            raise ValueError(
                f"apt target {text!r} is not <distribution><major>-<cpu> with cpu one of {', '.join(DPKG_ARCH)} "
                "(e.g. debian12-aarch64)"
            )
        return cls(distribution, major, cpu)

    def __str__(self) -> str:
        return f"{self.distribution}{self.major}-{self.cpu}"

    @property
    def arch(self) -> str:
        return DPKG_ARCH[self.cpu]


@dataclass(frozen=True)
class DebFile:
    """A package file as apt names it in its archive directory: ``name_version_arch.deb``."""

    name: str
    version: str
    arch: str

    @classmethod
    def parse(cls, filename: str) -> DebFile:
        stem = filename.removesuffix(".deb")
        parts = stem.split("_")
        if len(parts) != 3 or stem == filename:
            raise ValueError(f"{filename!r} is not a package file name (name_version_arch.deb)")
        return cls(parts[0], unquote(parts[1]), parts[2])

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def controller_release(os_release: Path = Path("/etc/os-release")) -> tuple[str, str]:
    """The controller's distribution and major version, from os-release (``("debian", "12")``)."""
    fields = dict(line.split("=", 1) for line in os_release.read_text(encoding="utf-8").splitlines() if "=" in line)
    return fields.get("ID", "").strip('"'), fields.get("VERSION_ID", "").strip('"').split(".")[0]


def check_target(target: Target, release: tuple[str, str]) -> None:
    """The controller's apt sources name its own distribution's suites: other targets are gathered elsewhere."""
    if (target.distribution, target.major) != release:
        raise ValueError(
            f"apt target {target} is for {target.distribution} {target.major}, but this controller's apt sources are "
            f"for {release[0]} {release[1]}: gather it on a {target.distribution} {target.major} machine "
            "(docs/air-gapped.md)"
        )


def apt_options(state: Path, target: Target, archives: Path) -> list[str]:
    """apt options for a private state of the target: its own lists and cache, an empty dpkg status (so the
    whole dependency closure is resolved, as for a bare system), the target's architecture only. The sources and
    their keys stay the controller's."""
    settings = {
        "Dir::State": state,
        "Dir::State::Lists": state / "lists",
        "Dir::State::status": state / "status",
        "Dir::Cache": state / "cache",
        "Dir::Cache::archives": archives,
        "APT::Architecture": target.arch,
        "APT::Architectures::": target.arch,
        "Debug::NoLocking": "1",
    }
    return [part for key, value in settings.items() for part in ("-o", f"{key}={value}")]


def prepare_state(state: Path, archives: Path) -> None:
    for directory in (state / "lists/partial", state / "cache", archives / "partial"):
        directory.mkdir(parents=True, exist_ok=True)
    (state / "status").touch()


def update(options: list[str], state: Path) -> None:
    """Read the sources' indexes. Without network, the last gathering's indexes are used when there are some."""
    result = subprocess.run(["apt-get", *options, "-q", "update"], capture_output=True, text=True)
    failed = result.returncode != 0 or "\nW: Failed to fetch" in f"\n{result.stderr}" or "\nE: " in f"\n{result.stderr}"
    if failed and not any((state / "lists").glob(f"*_{INDEX}*")):
        raise RuntimeError(f"apt-get update found no package index:\n{result.stderr.strip()}")


def closure(options: list[str], packages: Iterable[str], recommends: bool) -> list[DebFile]:
    """The files apt would download to install the packages on a bare system (dependencies, and recommended
    packages when `recommends`). The options' archive directory must be empty: apt leaves out what it holds."""
    packages = list(packages)
    if not packages:
        return []
    command = ["apt-get", *options, f"-oAPT::Install-Recommends={str(recommends).lower()}", "-qq", "--print-uris"]
    result = subprocess.run([*command, "install", "--download-only", "--", *packages], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"apt cannot resolve {' '.join(packages)}:\n{result.stdout}{result.stderr}".strip())
    return [DebFile.parse(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("'")]


def download(options: list[str], packages: Iterable[str], recommends: bool) -> None:
    """Download what `closure` lists into the archive directory; apt checks every file against the signed index
    and keeps a file already there that matches."""
    packages = list(packages)
    if packages:
        command = ["apt-get", *options, f"-oAPT::Install-Recommends={str(recommends).lower()}", "-qq", "--yes"]
        subprocess.run([*command, "install", "--download-only", "--", *packages], check=True)


def index(options: list[str], files: Iterable[DebFile]) -> str:
    """The upstream index's stanzas of exactly these files, each ``Filename`` pointing beside the index."""
    files = sorted(set(files), key=lambda deb: (deb.name, deb.arch))
    # An architecture-independent package is in the native architecture's namespace: no ":all".
    query = [f"{deb.name}{'' if deb.arch == 'all' else ':' + deb.arch}={deb.version}" for deb in files]
    result = subprocess.run(["apt-cache", *options, "show", "--", *query], capture_output=True, text=True, check=True)
    stanzas: dict[tuple[str, str, str], str] = {}
    for stanza in result.stdout.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        key = (fields.get("Package", ""), fields.get("Version", ""), fields.get("Architecture", ""))
        deb = DebFile(*key)
        if "SHA256" not in fields:
            raise RuntimeError(f"the index gives no SHA256 for {deb.filename}")
        lines = [
            f"Filename: ./{deb.filename}" if line.startswith("Filename: ") else line for line in stanza.split("\n")
        ]
        stanzas.setdefault(key, "\n".join(lines))
    missing = {deb.filename for deb in files} - {DebFile(*key).filename for key in stanzas}
    if missing:
        raise RuntimeError(f"the index has no stanza for {', '.join(sorted(missing))}")
    return "\n\n".join(stanzas[key] for key in sorted(stanzas)) + "\n"


def fetch(
    bundle: Path, target: Target, packages: Iterable[str], bare_packages: Iterable[str], state: Path
) -> tuple[int, int]:
    """Gather the target's packages into bundle/apt/<target>/ and record them; (downloaded, kept) file counts."""
    bundle = bundle.resolve()
    directory = bundle / KIND / str(target)
    options = apt_options(state, target, directory)
    prepare_state(state, directory)
    update(options, state)
    sets = ((list(packages), True), (list(bare_packages), False))
    resolving = apt_options(state, target, state / "nothing")  # an empty archive: every file is listed
    prepare_state(state, state / "nothing")
    wanted = {deb for names, recommends in sets for deb in closure(resolving, names, recommends)}
    present = {path.name for path in directory.glob("*.deb")}
    for names, recommends in sets:
        download(options, names, recommends)
    kept = len({deb.filename for deb in wanted} & present)
    (directory / "lock").unlink(missing_ok=True)
    for leftover in (directory / "partial").iterdir():
        leftover.unlink()
    (directory / "partial").rmdir()
    names = {deb.filename for deb in wanted}
    for stale in directory.glob("*.deb"):
        if stale.name not in names:
            stale.unlink()
    (directory / INDEX).write_text(index(options, wanted), encoding="utf-8")
    versions = {directory / name: DebFile.parse(name).version for name in names} | {directory / INDEX: str(target)}
    record_part(bundle, f"{KIND}/{target}", versions, KIND)
    return len(names) - kept, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apt_repo", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--target", required=True, help="<distribution><major>-<cpu>, e.g. debian12-aarch64")
    parser.add_argument("--package", action="append", default=[], help="installed with its recommended packages")
    parser.add_argument("--bare-package", action="append", default=[], help="installed without them")
    parser.add_argument(
        "--state",
        type=Path,
        help="where apt keeps the target's indexes (default: ~/.cache/picocluster-claw/apt/<target>)",
    )
    args = parser.parse_args(argv)
    try:
        target = Target.parse(args.target)
        check_target(target, controller_release())
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "picocluster-claw/apt"
        state = args.state or cache / str(target)
        downloaded, kept = fetch(args.bundle, target, args.package, args.bare_package, state)
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"bundle {args.bundle}: {error}", file=sys.stderr)
        return 1
    print(f"{target}: downloaded {downloaded}, kept {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
