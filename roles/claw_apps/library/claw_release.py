#!/usr/bin/python
"""Build one release archive of the claw apps for a node's Python and CPU, on the controller."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: claw_release
short_description: Build the claw wheel and a hash-verified wheelhouse for one node target
description:
  - Builds the repository's wheel reproducibly (C(SOURCE_DATE_EPOCH), from a clean copy of the sources),
    keeps the lock's lines whose markers match the target Python, downloads those wheels with
    C(pip download --require-hashes) and packs wheel, wheelhouse and requirements into one tar archive.
  - The release id is the package version plus a digest of the wheel and the lock, so the same sources give the
    same id and an unchanged archive is never rebuilt.
  - Nodes of one target share the work: the first builds while the others wait on a lock, then they find the
    archive by a digest of its inputs (sources, locks, target) without building the wheel again.
options:
  source: {description: Repository root (holds pyproject.toml and apps/)., type: path, required: true}
  lock: {description: Hash-pinned requirements of the wheel., type: path, required: true}
  extra_locks:
    description: Further hash-pinned requirement files installed beside it (extras such as the Pi's GPIO libraries).
    type: list
    elements: path
    default: []
  cache_dir: {description: Controller directory that keeps the archives., type: path, required: true}
  python_version: {description: The node's Python as major.minor., type: str, required: true}
  machine: {description: The node's CPU (x86_64 or aarch64)., type: str, required: true}
  epoch: {description: SOURCE_DATE_EPOCH for the wheel's timestamps., type: int, default: 315532800}
  find_links:
    description:
      - A directory of wheels (an air-gapped bundle's C(python/)) to take the dependencies from with no index at
        all; empty downloads them from the indexes the controller's pip is configured with. The lock's hashes are
        required either way.
    type: path
    default: ""
author: PicoCluster Claw
"""

RETURN = r"""
release: {description: Release id (version-digest)., returned: always, type: str}
archive: {description: Path of the release archive on the controller., returned: always, type: str}
wheel: {description: File name of the claw wheel inside the archive., returned: always, type: str}
"""

# The appliance wheel is made of these alone: SMEEP (benchmarks/) is its own distribution, not an input.
SOURCES = ("pyproject.toml", "README.md", "apps")
# The same tags as tools/lock_runtime.py, so pip picks the files whose hashes the lock holds.
MANYLINUX = (*(f"manylinux_2_{minor}" for minor in range(36, 16, -1)), "manylinux2014")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


IGNORED_PARTS = ("__pycache__", "build")


def ignored(relative: Path) -> bool:
    """Build debris the wheel is not made from (as build_wheel's copy leaves it out)."""
    return (
        any(part in IGNORED_PARTS or part.endswith(".egg-info") for part in relative.parts) or relative.suffix == ".pyc"
    )


def inputs_digest(source: Path, locks: list[Path], target: str) -> str:
    """A digest of everything an archive is made from: the sources' names and contents, the locks, the target."""
    digest = hashlib.sha256(target.encode())
    for name in SOURCES:
        root = source / name
        files = [root] if root.is_file() else sorted(path for path in root.rglob("*") if path.is_file())
        for path in files:
            relative = path.relative_to(source)
            if not ignored(relative):
                digest.update(f"{relative}\0{sha256(path)}\n".encode())
    for lock in locks:
        digest.update(f"{lock.name}\0{sha256(lock)}\n".encode())
    return digest.hexdigest()


def build_wheel(module: AnsibleModule, source: Path, scratch: Path, epoch: int) -> Path:
    tree = scratch / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=ignore)
        else:
            tree.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tree / name)
    out = scratch / "wheel"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    run(module, [*command, str(tree)], env)
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        module.fail_json(msg=f"expected one wheel from {source}, got {[w.name for w in wheels]}")
    return wheels[0]


def target_requirements(lock: Path, python_version: str) -> str:
    """The lock's requirements whose markers hold on the target Python (pip would judge them by its own), without
    their markers: pip on the controller would otherwise skip a 3.10-only pin when it downloads for a 3.10 node."""
    from packaging.markers import Marker

    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    kept, current = [], []
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        current.append(line)
        if line.endswith("\\"):
            continue
        head = current[0].rstrip(" \\")
        pin, _, marker = head.partition(";")
        if not marker.strip() or Marker(marker.strip()).evaluate(environment):
            kept.extend([f"{pin.strip()} \\" if len(current) > 1 else pin.strip(), *current[1:]])
        current = []
    return "\n".join(kept) + "\n" if kept else ""


def run(module: AnsibleModule, command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        module.fail_json(msg=f"{' '.join(command[:5])} ... failed", stderr=result.stderr[-4000:])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "path", "required": True},
            "lock": {"type": "path", "required": True},
            "extra_locks": {"type": "list", "elements": "path", "default": []},
            "cache_dir": {"type": "path", "required": True},
            "python_version": {"type": "str", "required": True},
            "machine": {"type": "str", "required": True, "choices": ["x86_64", "aarch64"]},
            "epoch": {"type": "int", "default": 315532800},
            "find_links": {"type": "path", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    source, cache = Path(params["source"]), Path(params["cache_dir"])
    locks = [Path(params["lock"]), *(Path(extra) for extra in params["extra_locks"])]
    cache.mkdir(parents=True, exist_ok=True)
    target = f"py{params['python_version']} {params['machine']} epoch {params['epoch']} links {params['find_links']}"
    inputs = inputs_digest(source, locks, target)
    index = cache / f"inputs-{inputs}.json"
    # One build per target at a time: the other nodes of a wave wait here, then read the index.
    with (cache / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = json.loads(index.read_text()) if index.exists() else None
        if built and Path(built["archive"]).exists():
            module.exit_json(changed=False, **built)
        result, changed = build(module, source, cache, locks, params)
        if not module.check_mode:
            partial = index.with_suffix(".partial")
            partial.write_text(json.dumps(result))
            partial.replace(index)
    module.exit_json(changed=changed, **result)


def build(module: AnsibleModule, source: Path, cache: Path, locks: list[Path], params: dict) -> tuple[dict, bool]:
    """The wheel, then (unless an archive of the same release exists) the wheelhouse and the archive; whether
    an archive was (or in check mode would be) written."""
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        scratch = Path(tmp)
        wheel = build_wheel(module, source, scratch, params["epoch"])
        version = wheel.name.split("-")[1]
        digest = hashlib.sha256(" ".join(map(sha256, [wheel, *locks])).encode()).hexdigest()[:12]
        release = f"{version}-{digest}"
        archive = cache / f"claw-{release}-py{params['python_version']}-{params['machine']}.tar"
        result = {"release": release, "archive": str(archive), "wheel": wheel.name}
        if archive.exists() or module.check_mode:
            return result, not archive.exists()
        requirements = scratch / "requirements.txt"
        text = "".join(target_requirements(lock, params["python_version"]) for lock in locks)
        requirements.write_text(text, encoding="utf-8")
        platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{params['machine']}")]
        wheelhouse = scratch / "wheelhouse"
        sources = ["--no-index", "--find-links", params["find_links"]] if params["find_links"] else []
        run(module, [
            sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps",
            "--only-binary", ":all:", "--python-version", params["python_version"], *platforms,
            "--dest", str(wheelhouse), "--requirement", str(requirements), *sources,
        ])  # fmt: skip
        shutil.copy2(wheel, wheelhouse / wheel.name)
        handle, name = tempfile.mkstemp(dir=cache, prefix=".claw-", suffix=".partial")
        os.close(handle)
        partial = Path(name)
        with tarfile.open(partial, "w") as tar:
            tar.add(requirements, arcname="requirements.txt")
            for item in sorted(wheelhouse.iterdir()):
                tar.add(item, arcname=f"wheelhouse/{item.name}")
        partial.chmod(0o644)
        partial.replace(archive)  # atomic
    return result, True


if __name__ == "__main__":
    main()
