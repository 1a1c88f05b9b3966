"""The crush node's roles on the simulated Jetson: what the probes choose and what the release's checksums allow.

- base reads Ubuntu 22.04's facts (files/os-release) and takes vars/Ubuntu-22.yml: zram-generator 0.3's format.
- ollama finds the Jetson by /etc/nv_tegra_release (R36) and installs both archives, the JetPack 6 one over the
  main one, each verified against the release's sha256sum.txt (prepare.yml: 0.0.1 good, 0.0.2 with a wrong line
  for the JetPack archive, 0.0.3 without one; an air-gapped copy of 0.0.2 with its own good sha256sum.txt).
- llamacpp's preflight chooses the CUDA build for the Orin (device tree: tegra234) with JetPack's nvcc.

The tests run in file order: the failures that must leave 0.0.1 running come before the air-gapped upgrade.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.nodes import scenario_playbook

ROOT = "/opt/ollama"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]  # the container runs on the controller's CPU
ARCHIVE = f"ollama-linux-{ARCH}.tar.zst"
JETPACK = f"ollama-linux-{ARCH}-jetpack6.tar.zst"
ZEROS = "0" * 64
BUILD_RECORD = "/var/lib/molecule-llamacpp-build.json"
NVCC = "/usr/local/cuda-12.6/bin/nvcc"
RUNNER = "lib/ollama/cuda_jetpack6/libggml-cuda.so"  # the JetPack 6 archive's only file in the fixtures


def _ephemeral(path: str) -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / path


@pytest.fixture
def ollama():
    """The ollama role alone, again, with extra variables."""
    return scenario_playbook("ollama.yml")


@pytest.fixture
def llamacpp():
    """The llamacpp preflight (the probe) on the node, recording its choice in BUILD_RECORD."""
    return scenario_playbook("llamacpp.yml")


def _pid(node) -> int:
    return int(node.check_output("systemctl show --property=MainPID --value ollama"))


def _current(node) -> str:
    return node.check_output(f"readlink {ROOT}/current")


def _served_version(node) -> str:
    return json.loads(node.check_output("curl -fsS http://127.0.0.1:11434/api/version"))["version"]


def _environ(node) -> dict[str, str]:
    return json.loads(node.check_output("curl -fsS http://127.0.0.1:11434/double/environ"))


# -- base: Ubuntu 22.04's choices ------------------------------------------------------------------------------


def test_base_sizes_zram_in_the_terms_of_ubuntu_2204s_zram_generator(node):
    conf = node.file("/etc/systemd/zram-generator.conf").content_string.splitlines()
    # min(ram / 2, 4096), as zram-generator 0.3.2 reads it: it ignores zram-size=.
    assert "zram-fraction = 0.5" in conf
    assert "max-zram-size = 4096" in conf
    assert not [line for line in conf if line.startswith("zram-size")]


def test_base_services_run_under_their_ubuntu_names(node):
    for service in ("ssh", "systemd-timesyncd", "nftables"):
        assert node.service(service).is_enabled, service
    assert node.service("nftables").is_running


# -- ollama: both archives, verified against the release's sha256sum.txt ----------------------------------------


def test_jetson_gets_the_main_and_the_jetpack6_archive(node):
    release = f"{ROOT}/releases/0.0.1"
    assert node.file(f"{release}/bin/ollama").mode == 0o755
    assert node.file(f"{release}/lib/ollama/fixture-version").content_string.strip() == "0.0.1"
    # The JetPack 6 archive unpacked over the same prefix, beside the main archive's files.
    assert node.file(f"{release}/{RUNNER}").content_string == "jetpack6 runner of 0.0.1\n"
    assert _current(node) == release
    assert _served_version(node) == "0.0.1"
    environ = _environ(node)
    assert environ["JETSON_JETPACK"] == "6"
    assert environ["OLLAMA_FLASH_ATTENTION"] == "0"


def test_both_archives_were_checked_against_the_release_sha256sum():
    cache = _ephemeral("cache/ollama")
    # The refused upgrades' tests (0.0.2) may run first and leave their verified main archive here too.
    cached = sorted(path.name for path in cache.iterdir() if path.name.startswith("0.0.1-"))
    assert cached == sorted([f"0.0.1-{ARCHIVE}", f"0.0.1-{JETPACK}"])
    listed = {}
    for line in _ephemeral("fixtures/v0.0.1/sha256sum.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            sha, name = line.split()
            listed[name.removeprefix("./")] = sha
    for name in (ARCHIVE, JETPACK):
        assert hashlib.sha256((cache / f"0.0.1-{name}").read_bytes()).hexdigest() == listed[name]


def test_a_wrong_line_fails_with_nothing_changed_and_the_engine_untouched(node, ollama):
    pid = _pid(node)
    run = ollama({"ollama_version": "0.0.2"})
    assert run.rc != 0, run.output
    assert run.failed == 1, run.output
    assert run.changed == 0, run.output
    assert f"did not match {ZEROS}" in run.text, run.output
    assert "Nothing was installed; the running version is untouched." in run.text, run.output
    assert not node.file(f"{ROOT}/releases/0.0.2").exists
    assert not node.file(f"{ROOT}/releases/0.0.2.partial").exists
    assert not node.file("/var/cache/ollama").exists
    assert _current(node) == f"{ROOT}/releases/0.0.1"
    assert _pid(node) == pid
    assert _served_version(node) == "0.0.1"


def test_a_missing_line_is_refused_before_anything_is_downloaded(node, ollama):
    pid = _pid(node)
    run = ollama({"ollama_version": "0.0.3"})
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert f"needs {ARCHIVE}, {JETPACK}, but no verified sha256 is pinned for {JETPACK}" in run.text, run.output
    assert "/v0.0.3/sha256sum.txt does not list it" in run.text, run.output
    assert not [path for path in _ephemeral("cache/ollama").iterdir() if path.name.startswith("0.0.3-")]
    assert not node.file(f"{ROOT}/releases/0.0.3").exists
    assert _pid(node) == pid


def test_a_pinned_value_wins_and_a_disagreeing_sha256sum_stops_the_install(node, ollama):
    # The JetPack archive pinned (wrongly) for 0.0.1: the release's file disagrees, nothing changes.
    run = ollama({"ollama_checksums": {"0.0.1": {JETPACK: "f" * 64}}})
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert f"disagrees with the sha256 pinned for {JETPACK}" in run.text, run.output
    assert _current(node) == f"{ROOT}/releases/0.0.1"


def test_an_air_gapped_archive_is_verified_against_the_sha256sum_beside_it(node, ollama):
    pid = _pid(node)
    source = _ephemeral(f"fixtures/airgap/0.0.2/{ARCHIVE}")
    run = ollama({"ollama_version": "0.0.2", "ollama_archive_src": str(source)})
    assert run.rc == 0, run.output
    release = f"{ROOT}/releases/0.0.2"
    assert node.file(f"{release}/{RUNNER}").content_string == "jetpack6 runner of 0.0.2\n"
    assert _current(node) == release
    assert _pid(node) != pid
    assert _served_version(node) == "0.0.2"


# -- llamacpp: the CUDA build chosen by the probe ---------------------------------------------------------------


def _options(args: str) -> dict[str, str]:
    return dict(word[2:].split("=", 1) for word in args.split() if word.startswith("-D") and "=" in word)


def test_the_probe_chooses_a_portable_cuda_build_for_the_orin(node, llamacpp):
    run = llamacpp({})
    assert run.rc == 0, run.output
    record = json.loads(node.file(BUILD_RECORD).content_string)
    assert record["accelerator"] == "cuda"
    options = _options(record["cmake_args"])
    assert options["GGML_CUDA"] == "on"
    assert options["CMAKE_CUDA_ARCHITECTURES"] == "87"  # tegra234 (Orin), read from the device tree
    assert options["CMAKE_CUDA_COMPILER"] == "/usr/local/cuda/bin/nvcc"
    assert options["GGML_NATIVE"] == "OFF"  # the CPU code stays portable
    assert record["environment"]["CUDACXX"] == "/usr/local/cuda/bin/nvcc"
    # Its own wheel, keyed by the distribution the facts name and the CUDA architecture.
    assert "/ubuntu22-" in record["wheel_key"]
    assert "-cuda87-" in record["wheel_key"]


def test_a_jetson_without_nvcc_is_refused(node, llamacpp):
    node.run_expect([0], f"mv {NVCC} {NVCC}.away")
    try:
        run = llamacpp({})
    finally:
        node.run_expect([0], f"mv {NVCC}.away {NVCC}")
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert "there is no nvcc at /usr/local/cuda/bin/nvcc" in run.text, run.output
