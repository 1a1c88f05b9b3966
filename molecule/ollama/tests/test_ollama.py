"""The ollama role on one node, against release archive fixtures (prepare.yml, files/ollama).

The tests run in this order: the install of 0.0.1 by converge, the failures that must leave it
running untouched, then an environment change and an upgrade to 0.0.2, each a converge run.
"""

import json
import os

ROOT = "/opt/ollama"
ENV_FILE = "/etc/ollama/ollama.env"
UNIT = "/etc/systemd/system/ollama.service"
ZEROS = "0" * 64
ARCHIVE = "ollama-linux-amd64.tar.zst"


def _pid(node) -> int:
    return int(node.check_output("systemctl show --property=MainPID --value ollama"))


def _environ(node) -> dict[str, str]:
    return json.loads(node.check_output("curl -fsS http://127.0.0.1:11434/double/environ"))


def _served_version(node) -> str:
    return json.loads(node.check_output("curl -fsS http://127.0.0.1:11434/api/version"))["version"]


def _current(node) -> str:
    return node.check_output(f"readlink {ROOT}/current")


def test_release_unpacked_in_its_own_directory(node):
    release = f"{ROOT}/releases/0.0.1"
    assert node.file(f"{release}/bin/ollama").mode == 0o755
    assert node.file(f"{release}/lib/ollama/libggml-double.so").is_file
    assert node.file(f"{release}/bin/ollama").user == "root"
    assert _current(node) == release
    assert node.check_output("readlink /usr/local/bin/ollama") == f"{ROOT}/current/bin/ollama"
    assert node.check_output("ollama --version") == "ollama version is 0.0.1"
    assert not node.file(f"{release}.partial").exists
    assert not node.file("/var/cache/ollama").exists  # archives copied to the node are removed once unpacked


def test_service_user(node):
    user = node.user("ollama")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/var/lib/ollama"
    assert "video" in user.groups


def test_unit_is_hardened_and_keeps_the_gpu_reachable(node):
    unit = node.file(UNIT).content_string
    for line in [
        "User=ollama",
        f"ExecStart={ROOT}/current/bin/ollama serve",
        f"EnvironmentFile={ENV_FILE}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/ollama /var/lib/ollama/models",
    ]:
        assert line in unit.splitlines()
    directives = [line.split("=", 1)[0] for line in unit.splitlines() if not line.startswith("#")]
    for closes_the_gpu in ["PrivateDevices", "DeviceAllow", "DevicePolicy", "ProtectClock"]:
        assert closes_the_gpu not in directives


def test_environment_file(node):
    env = node.file(ENV_FILE)
    assert env.mode == 0o640
    assert env.group == "ollama"
    lines = env.content_string.splitlines()
    for line in [
        'OLLAMA_HOST="0.0.0.0:11434"',
        'OLLAMA_MODELS="/var/lib/ollama/models"',
        'OLLAMA_KEEP_ALIVE="5m"',
        'OLLAMA_NUM_PARALLEL="1"',
        'OLLAMA_MAX_LOADED_MODELS="1"',
        'OLLAMA_CONTEXT_LENGTH="4096"',
        'OLLAMA_KV_CACHE_TYPE="f16"',
    ]:
        assert line in lines
    # Not a Jetson (no /etc/nv_tegra_release): flash attention stays on Ollama's auto, no JetPack.
    assert "OLLAMA_FLASH_ATTENTION" not in env.content_string
    assert "JETSON_JETPACK" not in env.content_string


def test_service_running_and_healthy(node):
    service = node.service("ollama")
    assert service.is_enabled
    assert service.is_running
    assert node.check_output(f"ps -o user= -p {_pid(node)}") == "ollama"
    assert node.check_output("curl -fsS http://127.0.0.1:11434/") == "Ollama is running"
    assert _served_version(node) == "0.0.1"
    assert _environ(node)["OLLAMA_HOST"] == "0.0.0.0:11434"


def test_models_dir_is_writable_by_the_server_only(node):
    models = node.file("/var/lib/ollama/models")
    assert models.user == "ollama"
    assert models.mode == 0o750
    assert node.file("/var/lib/ollama/models/blobs").user == "ollama"


def test_firewall_admits_the_allow_list(node):
    rule = node.file("/etc/nftables.d/ollama.nft").content_string
    assert "ip saddr { 10.0.0.0/8 } tcp dport 11434 accept" in rule
    assert "dport 11434" in node.check_output("nft list table inet picocluster_claw")


def test_wrong_checksum_on_upgrade_fails_and_leaves_the_running_version(node, converge):
    pid = _pid(node)
    run = converge({"ollama_version": "0.0.2", "ollama_checksums": {"0.0.2": {ARCHIVE: ZEROS}}})
    assert run.rc != 0, run.output
    assert run.failed == 1, run.output
    assert run.changed == 0, run.output
    assert "Nothing was installed; the running version is untouched." in run.text, run.output
    assert f"expected {ZEROS}" in run.text or "did not match" in run.text, run.output
    assert not node.file(f"{ROOT}/releases/0.0.2").exists
    assert not node.file(f"{ROOT}/releases/0.0.2.partial").exists
    assert _current(node) == f"{ROOT}/releases/0.0.1"
    assert _pid(node) == pid
    assert _served_version(node) == "0.0.1"


def test_wrong_checksum_of_a_local_archive_fails_with_both_sums(node, converge, tmp_path):
    pid = _pid(node)
    archive = tmp_path / ARCHIVE
    archive.write_bytes(b"not an ollama release\n")
    run = converge({"ollama_version": "0.0.2", "ollama_archive_src": str(archive)})
    assert run.rc != 0, run.output
    assert run.failed == 1, run.output
    assert run.changed == 0, run.output
    assert f"Checksum mismatch for Ollama 0.0.2: {archive} has sha256" in run.text, run.output
    assert "Nothing was installed; the running version is untouched." in run.text, run.output
    assert not node.file(f"{ROOT}/releases/0.0.2").exists
    assert _pid(node) == pid


def test_version_without_a_checksum_is_refused(node, converge):
    run = converge({"ollama_version": "9.9.9"})
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert f"Ollama 9.9.9 on molecule-ollama (amd64) needs {ARCHIVE}, but no verified sha256 is pinned" in run.text
    assert _current(node) == f"{ROOT}/releases/0.0.1"


def test_bad_listen_address_is_refused(converge):
    run = converge({"ollama_host": "localhost:11434"})
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert "ollama_host must be ADDRESS:PORT" in run.text, run.output


def _api(node, path: str) -> list[str]:
    return [m["name"] for m in json.loads(node.check_output(f"curl -fsS http://127.0.0.1:11434{path}"))["models"]]


def test_models_pulled_once_and_kept_warm(node):
    # converge and the idempotence run both saw the model list: the second found it present.
    pulls = node.file("/var/lib/ollama/models/double-pulls.log").content_string.split()
    assert pulls == ["gemma3:270m"]
    assert _api(node, "/api/tags") == ["gemma3:270m"]
    assert "gemma3:270m" in _api(node, "/api/ps")
    assert node.service("ollama-warmup").is_enabled


def test_models_are_pruned_and_a_model_without_a_tag_is_refused(node, converge):
    run = converge({"ollama_models": [{"name": "qwen", "ollama": "qwen3:0.6b"}]})
    assert run.rc == 0, run.output
    assert _api(node, "/api/tags") == ["qwen3:0.6b"]
    run = converge({"ollama_models": [{"name": "gguf-only", "path": "/srv/model.gguf"}]})
    assert run.rc != 0
    assert "Model 'gguf-only' has no valid `ollama` tag" in run.text, run.output
    assert _api(node, "/api/tags") == ["qwen3:0.6b"]


def test_environment_change_restarts_the_server(node, converge):
    pid = _pid(node)
    run = converge({"ollama_keep_alive": "10m", "ollama_extra_env": {"OLLAMA_DEBUG": "1"}})
    assert run.rc == 0, run.output
    assert run.changed > 0, run.output
    assert _pid(node) != pid
    environ = _environ(node)
    assert environ["OLLAMA_KEEP_ALIVE"] == "10m"
    # The restart started the warm-up unit, which loaded the keep-warm model again.
    assert _api(node, "/api/tags") == ["gemma3:270m"]
    poll = "curl -fsS http://127.0.0.1:11434/api/ps | grep -q gemma3:270m"
    node.run_expect([0], f"for i in $(seq 30); do {poll} && exit 0; sleep 1; done; exit 1")
    assert environ["OLLAMA_DEBUG"] == "1"


def test_upgrade_from_a_local_archive_switches_the_link(node, converge):
    pid = _pid(node)
    fixtures = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"] + "/fixtures"
    run = converge({"ollama_version": "0.0.2", "ollama_archive_src": f"{fixtures}/v0.0.2/{ARCHIVE}"})
    assert run.rc == 0, run.output
    assert node.file(f"{ROOT}/releases/0.0.1/bin/ollama").exists
    assert node.file(f"{ROOT}/releases/0.0.2/bin/ollama").exists
    assert _current(node) == f"{ROOT}/releases/0.0.2"
    assert node.check_output("ollama --version") == "ollama version is 0.0.2"
    assert _pid(node) != pid
    assert _served_version(node) == "0.0.2"


def test_jetson_without_a_jetpack_checksum_is_refused(node, converge):
    node.run_expect([0], "printf '# R36 (release), REVISION: 4.3, GCID: 0, BOARD: generic\\n' > /etc/nv_tegra_release")
    run = converge({"ollama_version": "0.0.2"})
    assert run.rc != 0, run.output
    assert run.changed == 0, run.output
    assert "(amd64, JetPack 6) needs ollama-linux-amd64.tar.zst, ollama-linux-amd64-jetpack6.tar.zst" in run.text
    assert "no verified sha256 is pinned for ollama-linux-amd64-jetpack6.tar.zst" in run.text, run.output


def test_jetson_gets_the_jetpack_archive_and_its_defaults(node, converge):
    # Still the simulated R36 node of the previous test.
    run = converge({"ollama_version": "0.0.3"})
    assert run.rc == 0, run.output
    release = f"{ROOT}/releases/0.0.3"
    assert node.file(f"{release}/bin/ollama").exists
    assert node.file(f"{release}/lib/ollama/cuda_jetpack6/libggml-cuda.so").is_file
    assert _current(node) == release
    # ollama_keep_releases (2): the one in use and the one before it stay, 0.0.1 is removed.
    assert node.file(f"{ROOT}/releases/0.0.2").is_directory and not node.file(f"{ROOT}/releases/0.0.1").exists
    environ = _environ(node)
    assert environ["JETSON_JETPACK"] == "6"
    assert environ["OLLAMA_FLASH_ATTENTION"] == "0"
    assert _served_version(node) == "0.0.3"
