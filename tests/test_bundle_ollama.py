"""The bundle keeps Ollama's release sha256sum.txt beside the archives, so an offline install (and an offline re-run
of playbooks/bundle.yml) reads it there, as role ollama does for an air-gapped archive (ollama_archive_src's
directory).

playbooks/bundle.yml runs with `--tags ollama` (only Ollama's part, with the verifier and the final check) against a
release served from a temporary directory by an HTTP server on 127.0.0.1; role ollama's own preflight and fetch
then install from the bundle with no release server at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.release_server import serve
from tests.test_ollama_checksums import ARCH, R36, run_role

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "apps/claw/bundle.py"
# This machine's archive and its JetPack twin (the role's probe takes this machine for a Jetson in the last test).
ARCHES = [ARCH, f"{ARCH}-jetpack6"]
ARCHIVES = {f"ollama-linux-{arch}.tar.zst": f"{arch} archive\n".encode() for arch in ARCHES}
MAIN, JETPACK = ARCHIVES


@dataclass
class Release:
    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)

    def publish(self, version: str, sums: dict[str, str] | None = None) -> str:
        """The archives and a sha256sum.txt (the archives' own sums unless given; None: no file) under v<version>."""
        directory = self.root / f"v{version}"
        directory.mkdir(parents=True)
        for name, content in ARCHIVES.items():
            (directory / name).write_bytes(content)
        if sums is None:
            sums = {name: hashlib.sha256(content).hexdigest() for name, content in ARCHIVES.items()}
        if sums:
            lines = {"ollama-darwin.tgz": "a" * 64, **sums}
            (directory / "sha256sum.txt").write_text("".join(f"{sha}  ./{name}\n" for name, sha in lines.items()))
        return f"{self.url}/v{version}"


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    served = Release(tmp_path / "release")
    served.root.mkdir()
    with serve(served.root, served.requests) as url:
        served.url = url
        yield served


def gather(bundle: Path, version: str, base_url: str, **extra: object) -> subprocess.CompletedProcess[str]:
    variables = {
        "bundle_dir": str(bundle), "bundle_ollama": True, "bundle_llamacpp": False, "bundle_ollama_arches": ARCHES,
        "ollama_version": version, "ollama_download_base_url": base_url, **extra,
    }  # fmt: skip
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")), str(REPO / "playbooks/bundle.yml"),
        "--tags", "ollama", "-e", json.dumps(variables),
    ]  # fmt: skip
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def text(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.ansible
def test_the_release_sha256sum_is_kept_beside_the_archives_and_serves_an_offline_install(tmp_path, release):
    base = release.publish("0.0.1")
    bundle = tmp_path / "bundle"
    result = gather(bundle, "0.0.1", base)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    directory = bundle / "ollama/0.0.1"
    assert sorted(path.name for path in directory.iterdir()) == sorted([*ARCHIVES, "sha256sum.txt"])
    assert (directory / "sha256sum.txt").read_bytes() == (release.root / "v0.0.1/sha256sum.txt").read_bytes()
    entries = {item["path"]: item for item in json.loads((bundle / "manifest.json").read_text())["files"]}
    assert entries["ollama/0.0.1/sha256sum.txt"]["kind"] == "ollama-sums"
    assert entries["ollama/0.0.1/sha256sum.txt"]["version"] == "0.0.1"
    assert {entries[f"ollama/0.0.1/{name}"]["kind"] for name in ARCHIVES} == {"ollama"}
    assert subprocess.run([sys.executable, str(SCRIPT), "verify", str(bundle)], check=False).returncode == 0

    # A re-run asks the release for nothing: the checksum file and the archives are in the bundle.
    release.requests.clear()
    result = gather(bundle, "0.0.1", base)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert release.requests == []

    # Role ollama on a Jetson, from the bundle alone (no release server): nothing is pinned for 0.0.1, so both
    # archives are checked against the sha256sum.txt beside ollama_archive_src.
    jetson = tmp_path / "nv_tegra_release"
    jetson.write_text(R36)
    run = run_role(tmp_path, {
        "_ollama_l4t_release_file": str(jetson), "ollama_version": "0.0.1",
        "ollama_archive_src": str(directory / MAIN), "ollama_download_base_url": "https://unreachable.invalid/v0.0.1",
    })  # fmt: skip
    assert run.rc == 0, run.output
    assert not (tmp_path / "cache/ollama").exists()  # checked where they lie: nothing was downloaded
    # It is that file the role reads: a wrong line there (recorded, so the manifest still agrees) stops it.
    sums = directory / "sha256sum.txt"
    sums.write_text(sums.read_text().replace(hashlib.sha256(ARCHIVES[JETPACK]).hexdigest(), "0" * 64))
    subprocess.run([sys.executable, str(SCRIPT), "record", "--kind=ollama-sums", str(bundle), str(sums)], check=True)
    run = run_role(tmp_path, {
        "_ollama_l4t_release_file": str(jetson), "ollama_version": "0.0.1",
        "ollama_archive_src": str(directory / MAIN), "ollama_download_base_url": "https://unreachable.invalid/v0.0.1",
    })  # fmt: skip
    assert run.rc != 0 and f"expected {'0' * 64}" in run.text, run.output


@pytest.mark.ansible
def test_a_pinned_value_is_kept_and_the_release_file_gives_the_others(tmp_path, release):
    base = release.publish("0.0.2")
    pinned = {"0.0.2": {MAIN: hashlib.sha256(ARCHIVES[MAIN]).hexdigest()}}
    result = gather(tmp_path / "bundle", "0.0.2", base, ollama_checksums=pinned)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert (tmp_path / "bundle/ollama/0.0.2" / JETPACK).read_bytes() == ARCHIVES[JETPACK]


@pytest.mark.ansible
def test_a_release_file_that_contradicts_a_pin_stops_before_any_archive(tmp_path, release):
    base = release.publish("0.0.3")
    result = gather(tmp_path / "bundle", "0.0.3", base, ollama_checksums={"0.0.3": {JETPACK: "e" * 64}})
    assert result.returncode != 0
    assert f"sha256sum.txt disagrees with the sha256 pinned for {JETPACK}" in text(result), result.stdout[-4000:]
    assert [path for path in release.requests if path.endswith(".tar.zst")] == []


@pytest.mark.ansible
def test_an_unpinned_archive_without_a_release_file_is_refused_before_any_download(tmp_path, release):
    base = release.publish("0.0.4", sums={})
    pinned = {"0.0.4": {MAIN: hashlib.sha256(ARCHIVES[MAIN]).hexdigest()}}
    result = gather(tmp_path / "bundle", "0.0.4", base, ollama_checksums=pinned)
    assert result.returncode != 0
    assert f"no sha256 is pinned for {JETPACK}, and there is no" in text(result), result.stdout[-4000:]
    assert [path for path in release.requests if path.endswith(".tar.zst")] == []
    # Every archive pinned: the bundle is gathered without the file, and says so.
    result = gather(tmp_path / "bundle", "0.0.4", base, ollama_checksums=pinned, bundle_ollama_arches=[ARCH])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "the bundle gets no sha256sum.txt" in text(result)
    assert not (tmp_path / "bundle/ollama/0.0.4/sha256sum.txt").exists()


@pytest.mark.ansible
def test_the_release_file_is_only_read_over_https(tmp_path):
    result = gather(tmp_path / "bundle", "0.0.5", "http://mirror.example/v0.0.5")
    assert result.returncode != 0
    assert "http://mirror.example/v0.0.5, which is not HTTPS" in text(result), result.stdout[-4000:]
