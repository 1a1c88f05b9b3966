"""The entry point's provisioning helpers: ``check`` (run before a new config replaces the running one) and
``hash-password --from-file --output`` (the role's password hash, rewritten only when the password changed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from claw.threadweaver import auth


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claw.threadweaver", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, dict]:
    (tmp_path / "console-password").write_text("correct horse battery\n")
    auth.sync_hash(tmp_path / "console-password", tmp_path / "password-hash")
    (tmp_path / "tls.crt").write_text("cert")
    (tmp_path / "tls.key").write_text("key")
    settings = {
        "port": 8600,
        "password_file": str(tmp_path / "password-hash"),
        "store": {"path": str(tmp_path / "state/threads.db"), "key_file": str(tmp_path / "store.key")},
        "tls": {"cert_file": str(tmp_path / "tls.crt"), "key_file": str(tmp_path / "tls.key")},
        "providers": {"crush": {"kind": "crush", "base_url": "http://crush:8080/v1", "engine": "llamacpp"}},
    }
    return tmp_path / "config.yml", settings


def write(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def test_check_accepts_a_good_config_without_touching_the_store(config):
    path, settings = config
    result = run("check", "--config", str(write(path, settings)))
    assert result.returncode == 0, result.stderr
    assert not (path.parent / "state").exists(), "check opened (created) the thread store"
    assert not (path.parent / "store.key").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"port": 70000}, "port"),
        ({"providers": {"x": {"kind": "bard"}}}, "kind"),
        ({"caps": {"openai": 5}}, "caps names providers that are not configured: openai"),
        ({"providers": {"c": {"kind": "crush"}}}, "crush needs base_url"),
        ({"tls": {"cert_file": "/nonexistent/tls.crt", "key_file": "/nonexistent/tls.key"}}, "tls.crt does not exist"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_check_names_what_is_wrong(config, change, expected):
    path, settings = config
    result = run("check", "--config", str(write(path, {**settings, **change})))
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["check", "validate"])
def test_the_port_is_required(config, command):
    """The console knows no port of its own: the file (rendered from appliance_services) names it."""
    path, settings = config
    del settings["port"]
    result = run(command, "--config", str(write(path, settings)))
    assert result.returncode == 2
    assert "port\n  Field required" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_a_plain_password_file(config):
    path, settings = config
    result = run("check", "--config", str(write(path, {**settings, "password_file": settings["tls"]["cert_file"]})))
    assert result.returncode == 1
    assert "does not hold an scrypt hash" in result.stderr


def test_hash_file_follows_the_password_file(tmp_path):
    plain, hashed = tmp_path / "console-password", tmp_path / "password-hash"
    plain.write_text("first password here\n")
    assert run("hash-password", "--from-file", str(plain), "--output", str(hashed)).stdout.strip() == "updated"
    first = hashed.read_text()
    assert auth.verify_password("first password here", first)
    assert run("hash-password", "--from-file", str(plain), "--output", str(hashed)).stdout.strip() == "unchanged"
    assert hashed.read_text() == first, "an unchanged password must keep its hash (no needless restart)"
    plain.write_text("second password here\n")
    assert run("hash-password", "--from-file", str(plain), "--output", str(hashed)).stdout.strip() == "updated"
    assert auth.verify_password("second password here", hashed.read_text())
    assert not auth.verify_password("first password here", hashed.read_text())


def test_hash_password_options_go_together(tmp_path):
    result = run("hash-password", "--from-file", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "--from-file and --output go together" in result.stderr


def test_the_console_password_needs_12_characters_as_the_role_demands(tmp_path):
    assert auth.MIN_PASSWORD_LENGTH == 12
    role = Path(__file__).resolve().parents[2] / "roles/threadweaver/tasks/preflight.yml"
    assert f"threadweaver_password | length >= {auth.MIN_PASSWORD_LENGTH}" in role.read_text()
    plain, hashed = tmp_path / "console-password", tmp_path / "password-hash"
    plain.write_text("elevenchars\n")
    with pytest.raises(auth.PasswordFileError, match="needs at least 12 characters"):
        auth.sync_hash(plain, hashed)
    assert not hashed.exists()
    short = subprocess.run(
        [sys.executable, "-m", "claw.threadweaver", "hash-password"],
        input="elevenchars\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert short.returncode == 2 and "the password needs at least 12 characters" in short.stderr
    plain.write_text("twelve chars\n")
    assert auth.sync_hash(plain, hashed)
    assert auth.verify_password("twelve chars", hashed.read_text())
