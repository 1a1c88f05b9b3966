"""playbooks/workstation.yml on this machine: the Compose project rendered (not started) for each platform.

Two renders into one tmp directory, as an install and its upgrade: the first for Linux with the defaults, the second
for macOS with ThreadWeaver moved to another port through ``appliance_services_overrides``. The project must
validate with the Compose tooling here (podman-compose, from the dev extras; docker compose where present), follow
the one wiring map, keep its secrets (0600, the same after the second render) out of every compose file, run
every service as non-root with a healthcheck, and take its versions from the roles' defaults.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = ("linux", "macos", "windows")
MOVED_PORT = 8643
WIRING = yaml.safe_load((REPO / "playbooks/group_vars/all.yml").read_text())["appliance_services_defaults"]

pytestmark = pytest.mark.ansible


def _defaults(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


def _play(project: Path, platform: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
        str(REPO / "playbooks" / "workstation.yml"),
        "-e", json.dumps({
            "workstation_platform": platform, "workstation_project_dir": str(project), "workstation_up": False,
            "workstation_uid": 1000, "workstation_gid": 1000,
            "workstation_compose_command": [str(Path(sys.executable).with_name("podman-compose"))],
        }),
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def _secrets(project: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((project / "secrets").iterdir())}


def _compose_commands() -> list[list[str]]:
    commands = [[str(Path(sys.executable).with_name("podman-compose"))]]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        commands.append([docker, "compose"])
    return commands


def _merged(project: Path, platform: str) -> dict:
    """The project as Compose merges the base and the platform's overlay (every Compose command here agrees)."""
    merged = None
    for command in _compose_commands():
        result = subprocess.run(
            [*command, "-f", "compose.yaml", "-f", f"compose.{platform}.yaml", "--profile", "monitoring", "config"],
            cwd=project, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        merged = merged or yaml.safe_load(result.stdout)
    assert merged is not None
    return merged


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("workstation") / "compose"
    first = _play(root, "linux")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    secrets = _secrets(root)
    linux = {name: (root / name).read_text() for name in ("compose.yaml", "config/threadweaver.yml")}
    merged = {"linux": _merged(root, "linux")}
    # The upgrade: the same directory, re-rendered for another platform and with ThreadWeaver on another port.
    moved = {"appliance_services_overrides": {"threadweaver": {"port": MOVED_PORT}}}
    second = _play(root, "macos", "-e", json.dumps(moved))
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    merged.update({platform: _merged(root, platform) for platform in PLATFORMS})
    return {"root": root, "secrets": secrets, "linux": linux, "merged": merged}


def test_each_platform_validates_with_its_overlay(project: dict):
    for platform in PLATFORMS:
        services = project["merged"][platform]["services"]
        assert {"leds", "leds-watcher", "mcp", "threadweaver", "openclaw", "prometheus"} <= set(services)
        # macOS asks the host's Ollama (Metal); Linux and Windows run the llama.cpp engine container.
        assert ("engine" in services) == (platform != "macos"), platform
        for name, service in services.items():
            for needed in service.get("depends_on", {}):
                assert needed in services, (platform, name, needed)
            for secret in service.get("secrets", []):
                source = secret if isinstance(secret, str) else secret["source"]
                assert source in project["merged"][platform]["secrets"], (platform, name, source)
            owner = str(service.get("network_mode", "")).removeprefix("service:")
            assert not owner or owner in services, (platform, name, owner)
    env = (project["root"] / ".env").read_text()
    assert "COMPOSE_FILE=compose.yaml:compose.macos.yaml" in env


def test_threadweaver_port_follows_appliance_services(project: dict):
    root = project["root"]
    default_port = WIRING["threadweaver"]["port"]
    assert f":{default_port}:{default_port}" in project["linux"]["compose.yaml"]
    assert yaml.safe_load(project["linux"]["config/threadweaver.yml"])["port"] == default_port
    # After the override: the published port, the healthcheck and ThreadWeaver's config.
    compose = (root / "compose.yaml").read_text()
    assert f":{MOVED_PORT}:{MOVED_PORT}" in compose and str(default_port) not in compose
    assert f"127.0.0.1:{MOVED_PORT}/healthz" in compose
    assert yaml.safe_load((root / "config/threadweaver.yml").read_text())["port"] == MOVED_PORT
    # macOS: the host's Ollama, with the port of its appliance_services entry.
    crush = yaml.safe_load((root / "config/threadweaver.yml").read_text())["providers"]["crush"]
    assert crush["base_url"] == f"http://host.docker.internal:{WIRING['ollama']['port']}"


def test_secrets_are_private_stable_and_never_in_compose_files(project: dict):
    root = project["root"]
    secrets = _secrets(root)
    assert set(project["secrets"]) <= set(secrets)
    # OpenClaw's config is re-rendered (it holds the gateway token); every made secret stays as it was.
    made = {name: value for name, value in project["secrets"].items() if name != "openclaw_config"}
    changed = {name for name, value in made.items() if secrets[name] != value}
    assert not changed, f"re-rendering changed {changed}"
    assert (root / "secrets").stat().st_mode & 0o777 == 0o700
    for path in (root / "secrets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    values = [value.strip() for name, value in secrets.items() if name != "openclaw_config"]
    assert all(len(value) >= 16 for value in values)
    public = [root / ".env", *root.glob("compose*.yaml"), *(root / "config").iterdir()]
    for path in public:
        text = path.read_text()
        for value in values:
            assert value not in text, f"a secret is in {path.name}"


def test_services_are_non_root_healthchecked_and_pinned(project: dict):
    for platform in PLATFORMS:
        for name, service in project["merged"][platform]["services"].items():
            assert service.get("healthcheck", {}).get("test"), (platform, name)
            user = str(service.get("user", ""))
            assert user and user.split(":")[0] not in {"0", "root"}, (platform, name, user)
            assert service.get("read_only") is True, (platform, name)
            image = service["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (platform, name, image)
            for argument in _args(service):
                assert not argument.endswith(":latest"), (platform, name, argument)
            for dependency in service.get("depends_on", {}).values():
                assert dependency.get("condition", "service_healthy") == "service_healthy", (platform, name)
    for dockerfile in (REPO / "containers").glob("*.Dockerfile"):
        text = dockerfile.read_text()
        assert "latest" not in text, dockerfile
        assert re.search(r"^USER (?!root|0\b)", text, re.MULTILINE), dockerfile
        assert re.search(r"^FROM \$\{[A-Z_]+\}", text, re.MULTILINE), f"{dockerfile}: the base image is a build ARG"


def _args(service: dict) -> list[str]:
    """A service's build arguments as NAME=value (podman-compose lists them, docker compose maps them)."""
    args = service.get("build", {}).get("args", [])
    return [f"{key}={value}" for key, value in args.items()] if isinstance(args, dict) else list(args)


def _build_args(project: dict, service: str) -> dict:
    return dict(item.split("=", 1) for item in _args(project["merged"]["linux"]["services"][service]))


def test_versions_come_from_the_role_defaults(project: dict):
    openclaw, llamacpp, nodejs = _defaults("openclaw"), _defaults("llamacpp"), _defaults("nodejs")
    workstation = _defaults("workstation")
    assert _build_args(project, "openclaw")["OPENCLAW_VERSION"] == openclaw["openclaw_version"]
    nodejs_vars = yaml.safe_load((REPO / "roles/nodejs/defaults/main.yml").read_text())
    assert _build_args(project, "openclaw")["NODE_PACKAGE"].endswith(f"-{nodejs['nodejs_version']}.tgz")
    assert _build_args(project, "openclaw")["NPM_PACKAGE"] == f"npm-{nodejs_vars['nodejs_npm_version']}.tgz"
    assert _build_args(project, "engine")["LLAMACPP_VERSION"] == llamacpp["llamacpp_version"]
    claw_version = re.search(r'(?m)^version = "([^"]+)"', (REPO / "pyproject.toml").read_text())[1]
    assert _build_args(project, "leds")["CLAW_WHEEL"] == f"picocluster_claw-{claw_version}-py3-none-any.whl"
    for service in ("leds", "openclaw", "engine"):
        assert _build_args(project, service)["BASE_IMAGE"] == workstation["workstation_base_images"]["python"], service
        # Built from the bundle the play gathers, never from a network: the context is the bundle.
        assert project["merged"]["linux"]["services"][service]["build"]["context"].endswith("/bundle"), service
    # The Dockerfiles install from the bundle: the per-board hash-pinned locks the roles use, beside the bundle,
    # every file checked against its manifest, nothing fetched.
    dockerfiles = {path.name: path.read_text() for path in (REPO / "containers").glob("*.Dockerfile")}
    assert "--require-hashes" in dockerfiles["claw-apps.Dockerfile"]
    assert "--no-index" in dockerfiles["claw-apps.Dockerfile"]
    assert "npm ci --offline" in dockerfiles["openclaw.Dockerfile"]
    assert "--require-hashes" in dockerfiles["llamacpp.Dockerfile"]
    # Each part they copy is checked against the bundle's manifest just before the build.
    images_tasks = (REPO / "roles/workstation/tasks/images.yml").read_text()
    assert "verify.py" in images_tasks and "the bundle's manifest" in images_tasks
    role_vars = (REPO / "roles/workstation/vars/main.yml").read_text()
    for lock in ("claw_apps/files/locks/runtime-", "llamacpp/files/locks/server-", "openclaw/files/"):
        assert lock in role_vars, lock
    # No second list of versions: none of the pins is written into a Dockerfile.
    for pin in (openclaw["openclaw_version"], llamacpp["llamacpp_version"], nodejs["nodejs_version"]):
        assert not any(pin in text for text in dockerfiles.values()), pin
    # The engine is built with the llamacpp role's portable baselines (GGML_NATIVE off).
    assert "-DGGML_NATIVE=OFF" in _build_args(project, "engine")["CMAKE_ARGS_AMD64"]
    assert "-DGGML_NATIVE=OFF" in _build_args(project, "engine")["CMAKE_ARGS_ARM64"]


def test_every_platforms_project_follows_the_compose_specification(project: dict):
    """The merged project of each platform parses as the Compose specification types it (compose-spec, from the
    package index): podman-compose's `config` resolves files and anchors but checks few types."""
    for platform in PLATFORMS:
        # compose-spec 0.2.1 types extra_hosts as addresses and does not know `host-gateway`, the value Docker and
        # Podman give for the host (macOS's route to its Ollama): that one value is swapped for an address here.
        merged = json.loads(json.dumps(project["merged"][platform]).replace(":host-gateway", ":192.0.2.1"))
        PyCompose.from_json(json.dumps(merged))
        # The check can fail: a wrong type and an unknown dependency condition are refused.
        broken = copy.deepcopy(merged)
        broken["services"]["threadweaver"]["read_only"] = "maybe"
        with pytest.raises(ValueError, match="expected a boolean"):
            PyCompose.from_json(json.dumps(broken))
        broken = copy.deepcopy(merged)
        broken["services"]["threadweaver"]["depends_on"]["mcp"]["condition"] = "service_happy"
        with pytest.raises(ValueError, match="service_happy"):
            PyCompose.from_json(json.dumps(broken))


def test_a_bad_platform_is_refused_before_anything_is_written(tmp_path: Path):
    project = tmp_path / "compose"
    result = _play(project, "plan9")
    assert result.returncode != 0
    assert "workstation_platform" in result.stdout + result.stderr
    assert not project.exists()
