"""Ollama's archives are verified against the release's own sha256sum.txt, a pinned value preferred, and a Jetson
gets both the main and the JetPack archive.

Two levels: the functions of the role's module (roles/ollama/library/ollama_release.py) called directly, and the
role's own preflight and fetch tasks run by ansible-playbook against this machine, which only reads files and
downloads into a temporary cache: the release is served from a temporary directory by an HTTP server on 127.0.0.1,
and the Jetson is an L4T release file in that directory (_ollama_l4t_release_file).
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
from types import ModuleType

import pytest

from tests.modules import load_file
from tests.release_server import serve

REPO = Path(__file__).resolve().parents[1]
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
MAIN = f"ollama-linux-{ARCH}.tar.zst"
JETPACK = f"ollama-linux-{ARCH}-jetpack6.tar.zst"
R36 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
SHA_A = "a" * 64
SHA_B = "b" * 64


def _release() -> ModuleType:
    return load_file(REPO / "roles" / "ollama" / "library" / "ollama_release.py", "ollama_release")


# -- the module's functions --------------------------------------------------------------------------------------------


def test_the_l4t_release_is_read_as_install_sh_reads_it():
    release = _release()
    assert release.l4t_major(R36) == "36"
    assert release.l4t_major("") == ""
    assert release.jetpack("36") == "6"
    assert release.jetpack("32") == ""


@pytest.mark.parametrize(
    ("arch", "l4t", "expected"),
    [
        ("arm64", "36", ["ollama-linux-arm64.tar.zst", "ollama-linux-arm64-jetpack6.tar.zst"]),
        ("arm64", "35", ["ollama-linux-arm64.tar.zst", "ollama-linux-arm64-jetpack5.tar.zst"]),
        ("arm64", "", ["ollama-linux-arm64.tar.zst"]),  # not a Jetson (no /etc/nv_tegra_release)
        ("arm64", "32", ["ollama-linux-arm64.tar.zst"]),  # JetPack 4: Ollama publishes no archive for it
        ("amd64", "", ["ollama-linux-amd64.tar.zst"]),
    ],
)
def test_archives_for_the_node(arch, l4t, expected):
    assert _release().archives(arch, l4t) == expected


def test_sha256sum_txt_as_the_release_writes_it():
    text = (
        f"{SHA_A}  ./ollama-darwin.tgz\n"
        f"{SHA_B.upper()}  ./ollama-linux-arm64.tar.zst\n"
        f"{'c' * 64} *ollama-linux-arm64-jetpack6.tar.zst\r\n"
        "\n"
    )
    assert _release().sha256sums(text) == {
        "ollama-darwin.tgz": SHA_A,
        "ollama-linux-arm64.tar.zst": SHA_B,
        "ollama-linux-arm64-jetpack6.tar.zst": "c" * 64,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{SHA_A}  ./a.tar.zst\n{'a' * 63}  ./b.tar.zst\n", "sha256sum.txt line 2 is not '<sha256>  <archive>'"),
        (f"{SHA_A}  ./a.tar.zst\n<html>Not Found</html>\n", "sha256sum.txt line 2 is not"),
        (f"{SHA_A}  ./a.tar.zst\n{SHA_B}  ./a.tar.zst\n", "lists a.tar.zst twice with different sha256"),
    ],
)
def test_a_malformed_or_contradictory_sha256sum_txt_is_an_error(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _release().sha256sums(text)


def test_plan_prefers_pinned_values_and_fills_the_rest_from_the_release():
    plan = _release().checksum_plan([MAIN, JETPACK], {MAIN: SHA_A}, {MAIN: SHA_A, JETPACK: SHA_B})
    assert plan == {
        "checksums": {MAIN: SHA_A, JETPACK: SHA_B},
        "sources": {MAIN: "pinned", JETPACK: "sha256sum.txt"},
        "missing": [],
        "conflicts": [],
    }


def test_plan_names_a_missing_line_and_a_wrong_pinned_value():
    release = _release()
    missing = release.checksum_plan([MAIN, JETPACK], {}, {MAIN: SHA_A})
    assert missing["missing"] == [JETPACK]
    assert missing["checksums"] == {MAIN: SHA_A}
    conflict = release.checksum_plan([MAIN, JETPACK], {MAIN: SHA_B}, {MAIN: SHA_A, JETPACK: SHA_B})
    assert conflict["conflicts"] == [MAIN]
    assert conflict["checksums"][MAIN] == SHA_B  # the pinned value is the one the download is checked against
    with pytest.raises(ValueError, match="not 64 hex digits"):
        release.checksum_plan([MAIN], {MAIN: "sha256:abc"}, {})


# -- the role's preflight and fetch on this machine ---------------------------------------------------------------


@dataclass
class Release:
    """A release directory served over HTTP on 127.0.0.1, with the paths requested from it."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def publish(self, version: str, archives: dict[str, bytes], sums: str | None) -> dict[str, str]:
        directory = self.root / f"v{version}"
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in archives.items():
            (directory / name).write_bytes(content)
        if sums is not None:
            (directory / "sha256sum.txt").write_text(sums, encoding="utf-8")
        return {name: hashlib.sha256(content).hexdigest() for name, content in archives.items()}


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    root = tmp_path / "release"
    root.mkdir()
    served = Release(root, "")
    with serve(root, served.requests) as url:
        served.url = url
        yield served


PLAY = """
- name: Ollama's archives for this node
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run the ollama preflight
      ansible.builtin.include_role:
        name: ollama
        tasks_from: preflight
    - name: Get and verify the archives
      ansible.builtin.include_role:
        name: ollama
        tasks_from: fetch
"""


@dataclass
class Run:
    rc: int
    output: str

    @property
    def text(self) -> str:
        return " ".join(self.output.split())


def run_role(tmp_path: Path, extra_vars: dict) -> Run:
    """The ollama role's preflight and fetch against this machine (no check mode: the fetch fills tmp_path/cache)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    if not (tmp_path / "group_vars").exists():
        (tmp_path / "group_vars").symlink_to(REPO / "playbooks" / "group_vars")
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i", "localhost,", "-c", "local", str(playbook),
        "-e", f"ansible_python_interpreter={sys.executable}",
        "-e", json.dumps({"ollama_cache_dir": str(tmp_path / "cache"), **extra_vars}),
    ]  # fmt: skip
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture
def jetson(tmp_path: Path) -> dict[str, str]:
    """The variables that make this machine a Jetson on L4T R36 for the role's probe."""
    release_file = tmp_path / "nv_tegra_release"
    release_file.write_text(R36)
    return {"_ollama_l4t_release_file": str(release_file)}


def cached(tmp_path: Path, version: str) -> list[str]:
    cache = tmp_path / "cache" / "ollama"
    prefix = f"{version}-"
    return sorted(p.name.removeprefix(prefix) for p in cache.glob(f"{prefix}*")) if cache.exists() else []


ARCHIVES = {MAIN: b"main archive\n", JETPACK: b"jetpack6 archive\n"}


def sums_text(sums: dict[str, str]) -> str:
    return "".join(f"{sha}  ./{name}\n" for name, sha in {"ollama-darwin.tgz": SHA_A, **sums}.items())


@pytest.mark.ansible
def test_jetson_gets_both_archives_verified_by_the_release_sha256sum(tmp_path, release, jetson):
    sums = release.publish("0.0.1", ARCHIVES, None)
    (release.root / "v0.0.1" / "sha256sum.txt").write_text(sums_text(sums))
    run = run_role(tmp_path, {**jetson, "ollama_version": "0.0.1", "ollama_download_base_url": f"{release.url}/v0.0.1"})
    assert run.rc == 0, run.output
    assert cached(tmp_path, "0.0.1") == sorted([MAIN, JETPACK])
    for name, content in ARCHIVES.items():
        assert (tmp_path / "cache" / "ollama" / f"0.0.1-{name}").read_bytes() == content
    assert release.requests.count("/v0.0.1/sha256sum.txt") == 1


@pytest.mark.ansible
def test_a_node_that_is_no_jetson_gets_the_main_archive_only(tmp_path, release):
    sums = release.publish("0.0.1", ARCHIVES, None)
    (release.root / "v0.0.1" / "sha256sum.txt").write_text(sums_text(sums))
    absent = {"_ollama_l4t_release_file": str(tmp_path / "no-such-file")}
    run = run_role(tmp_path, {**absent, "ollama_version": "0.0.1", "ollama_download_base_url": f"{release.url}/v0.0.1"})
    assert run.rc == 0, run.output
    assert cached(tmp_path, "0.0.1") == [MAIN]
    assert f"/v0.0.1/{JETPACK}" not in release.requests


@pytest.mark.ansible
def test_a_wrong_line_fails_with_nothing_kept(tmp_path, release, jetson):
    sums = release.publish("0.0.2", ARCHIVES, None)
    (release.root / "v0.0.2" / "sha256sum.txt").write_text(sums_text({**sums, JETPACK: "0" * 64}))
    run = run_role(tmp_path, {**jetson, "ollama_version": "0.0.2", "ollama_download_base_url": f"{release.url}/v0.0.2"})
    assert run.rc != 0, run.output
    assert f"did not match {'0' * 64}" in run.text, run.output
    assert "Nothing was installed; the running version is untouched." in run.text, run.output
    assert JETPACK not in cached(tmp_path, "0.0.2")


@pytest.mark.ansible
def test_a_missing_line_is_refused_before_any_download(tmp_path, release, jetson):
    sums = release.publish("0.0.3", ARCHIVES, None)
    (release.root / "v0.0.3" / "sha256sum.txt").write_text(sums_text({MAIN: sums[MAIN]}))
    run = run_role(tmp_path, {**jetson, "ollama_version": "0.0.3", "ollama_download_base_url": f"{release.url}/v0.0.3"})
    assert run.rc != 0, run.output
    assert f"(amd64, JetPack 6) needs {MAIN}, {JETPACK}".replace("amd64", ARCH) in run.text, run.output
    assert f"no verified sha256 is pinned for {JETPACK}, and {release.url}/v0.0.3/sha256sum.txt does not list it" in (
        run.text
    ), run.output
    assert cached(tmp_path, "0.0.3") == []
    assert [path for path in release.requests if path.endswith(".tar.zst")] == []


@pytest.mark.ansible
def test_a_malformed_sha256sum_txt_is_refused(tmp_path, release, jetson):
    release.publish("0.0.4", ARCHIVES, f"{SHA_A}  ./{MAIN}\nthis is not a checksum line\n")
    run = run_role(tmp_path, {**jetson, "ollama_version": "0.0.4", "ollama_download_base_url": f"{release.url}/v0.0.4"})
    assert run.rc != 0, run.output
    assert "sha256sum.txt line 2 is not '<sha256> <archive>' as sha256sum writes it" in run.text, run.output
    assert cached(tmp_path, "0.0.4") == []


@pytest.mark.ansible
def test_a_release_without_sha256sum_txt_is_refused(tmp_path, release, jetson):
    release.publish("0.0.5", ARCHIVES, None)
    run = run_role(tmp_path, {**jetson, "ollama_version": "0.0.5", "ollama_download_base_url": f"{release.url}/v0.0.5"})
    assert run.rc != 0, run.output
    assert f"sha256sum.txt could not be read from {release.url}/v0.0.5/sha256sum.txt" in run.text, run.output
    assert cached(tmp_path, "0.0.5") == []


@pytest.mark.ansible
def test_a_pinned_value_is_preferred_and_a_disagreeing_release_file_stops_the_install(tmp_path, release, jetson):
    sums = release.publish("0.0.6", ARCHIVES, None)
    (release.root / "v0.0.6" / "sha256sum.txt").write_text(sums_text(sums))
    base = {**jetson, "ollama_version": "0.0.6", "ollama_download_base_url": f"{release.url}/v0.0.6"}
    # The main archive pinned: the release's file gives the JetPack archive's value and agrees on the main one.
    run = run_role(tmp_path, {**base, "ollama_checksums": {"0.0.6": {MAIN: sums[MAIN]}}})
    assert run.rc == 0, run.output
    assert cached(tmp_path, "0.0.6") == sorted([MAIN, JETPACK])
    # A pinned value the release's file contradicts: one of them is wrong, nothing is fetched.
    (tmp_path / "cache").rename(tmp_path / "cache-before")
    run = run_role(tmp_path, {**base, "ollama_checksums": {"0.0.6": {JETPACK: SHA_B}}})
    assert run.rc != 0, run.output
    assert f"sha256sum.txt disagrees with the sha256 pinned for {JETPACK}" in run.text, run.output
    assert cached(tmp_path, "0.0.6") == []


@pytest.mark.ansible
def test_the_release_file_is_only_trusted_over_https(tmp_path, jetson):
    # Refused before any request: the address is never contacted.
    run = run_role(
        tmp_path, {**jetson, "ollama_version": "0.0.7", "ollama_download_base_url": "http://mirror.example/v0.0.7"}
    )
    assert run.rc != 0, run.output
    assert "http://mirror.example/v0.0.7/sha256sum.txt, which is not HTTPS" in run.text, run.output


@pytest.mark.ansible
def test_an_air_gapped_archive_is_verified_against_the_sha256sum_beside_it(tmp_path, jetson):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name, content in ARCHIVES.items():
        (bundle / name).write_bytes(content)
    sums = {name: hashlib.sha256(content).hexdigest() for name, content in ARCHIVES.items()}
    base = {**jetson, "ollama_version": "0.0.8", "ollama_archive_src": str(bundle / MAIN)}
    run = run_role(tmp_path, base)
    assert run.rc != 0, run.output
    assert f"there is no {bundle}/sha256sum.txt beside ollama_archive_src" in run.text, run.output
    (bundle / "sha256sum.txt").write_text(sums_text({**sums, JETPACK: "0" * 64}))
    run = run_role(tmp_path, base)
    assert run.rc != 0, run.output
    assert f"Checksum mismatch for Ollama 0.0.8: {bundle}/{JETPACK} has sha256 {sums[JETPACK]}" in run.text, run.output
    (bundle / "sha256sum.txt").write_text(sums_text(sums))
    run = run_role(tmp_path, base)
    assert run.rc == 0, run.output
