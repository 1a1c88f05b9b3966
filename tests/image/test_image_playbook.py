"""playbooks/image.yml end to end: an arm64 Debian image bootstrapped from packages under qemu-user-static,
customised by a claw image's roles (base, nodejs), sealed, then booted in a systemd container where its
first-boot unit names the device.

Needs root, loop devices, podman and binfmt_misc (the playbook registers qemu-user-static); `make image-test`
runs it. Under emulation the whole module takes several minutes (the bootstrapped base is cached).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NODEJS_VERSION = yaml.safe_load((REPO / "roles/nodejs/defaults/main.yml").read_text())["nodejs_version"]
IMAGE_TAG = "localhost/picocluster-claw-image-test:latest"
CONTAINER = "claw-image-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("podman") is None, reason="needs root and podman")


def run(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def kernel_mounts_fat() -> bool:
    if re.search(r"\bvfat\b", Path("/proc/filesystems").read_text()):
        return True
    modprobe = shutil.which("modprobe") or "/sbin/modprobe"
    return Path(modprobe).exists() and run(modprobe, "vfat", check=False).returncode == 0


def playbook(*extra: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "playbooks/image.yml", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def root_partition_offset(image: Path) -> tuple[int, int]:
    table = json.loads(run("sfdisk", "--json", str(image)).stdout)["partitiontable"]
    root = next(p for p in table["partitions"] if p["node"].endswith("2"))
    sector = table.get("sectorsize", 512)
    return root["start"] * sector, root["size"] * sector


class MountedImage:
    """The image's root filesystem, mounted read-only by offset (no partition device nodes needed)."""

    def __init__(self, image: Path, mountpoint: Path) -> None:
        offset, size = root_partition_offset(image)
        self.loop = run(
            "losetup", "--find", "--show", "--read-only", "--offset", str(offset), "--sizelimit", str(size), str(image)
        ).stdout.strip()
        mountpoint.mkdir(parents=True, exist_ok=True)
        run("mount", "-o", "ro", self.loop, str(mountpoint))
        self.root = mountpoint

    def close(self) -> None:
        run("umount", str(self.root), check=False)
        run("losetup", "--detach", self.loop, check=False)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("image")


@pytest.fixture(scope="module")
def built(work: Path) -> Path:
    output = work / "claw.img"
    boot = "1" if kernel_mounts_fat() else "0"
    result = playbook("-e", f"image_output={output}", "-e", f"image_boot_partition={boot}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return output


@pytest.fixture(scope="module")
def image_root(built: Path, work: Path) -> Iterator[Path]:
    mounted = MountedImage(built, work / "root")
    try:
        yield mounted.root
    finally:
        mounted.close()


def test_outputs_checksum_and_bill_of_materials(built: Path):
    verified = subprocess.run(
        ["sha256sum", "-c", built.name + ".sha256"], cwd=built.parent, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    bom = json.loads(Path(f"{built}.bom.json").read_text())
    assert bom["node"] == "claw"
    assert bom["architecture"] == "aarch64"
    assert bom["roles"] == ["base", "nodejs", "firstboot"]  # a claw image's own roles, then first boot
    assert bom["sha256"] == Path(f"{built}.sha256").read_text().split()[0]
    assert "Debian GNU/Linux 12" in bom["os"]
    assert {"systemd", "nftables", "openssh-server", "python3"} <= set(bom["packages"])
    # What the roles installed outside dpkg: the Node.js release OpenClaw runs on, with npm.
    nodejs = yaml.safe_load((REPO / "roles/nodejs/defaults/main.yml").read_text())
    release = f"/opt/nodejs/releases/{nodejs['nodejs_version']}"
    assert bom["releases"] == {release: f"{nodejs['nodejs_version']} npm {nodejs['nodejs_npm_version']}"}


def test_nothing_is_left_attached_on_the_controller(built: Path, work: Path):
    assert run("losetup", "--associated", f"{built}.partial").stdout == ""
    assert run("losetup", "--associated", str(built)).stdout == ""
    assert str(work) not in Path("/proc/mounts").read_text()
    assert not Path(f"{built}.partial").exists()


def test_the_image_is_sealed(image_root: Path):
    assert (image_root / "etc/machine-id").read_text() == ""
    assert not list((image_root / "etc/ssh").glob("ssh_host_*"))
    assert not (image_root / "usr/sbin/policy-rc.d").exists()
    assert not (image_root / "var/lib/claw-firstboot/done").exists()
    assert not list((image_root / "var/cache/apt/archives").glob("*.deb"))
    wants = image_root / "etc/systemd/system/multi-user.target.wants/claw-firstboot.service"
    assert wants.is_symlink()


def test_role_base_ran_inside(image_root: Path):
    assert re.search(r"^claw:", (image_root / "etc/passwd").read_text(), re.M)
    assert "policy drop" in (image_root / "etc/nftables.conf").read_text()
    # Debian's nftables.service is wanted by sysinit.target.
    assert any(link.is_symlink() for link in (image_root / "etc/systemd/system").glob("*.wants/nftables.service"))
    assert (image_root / "usr/sbin/nft").exists()


def test_role_nodejs_ran_inside(image_root: Path):
    current = image_root / "opt/nodejs/current"
    assert current.is_symlink() and current.readlink().name == NODEJS_VERSION
    node = image_root / "opt/nodejs/releases" / NODEJS_VERSION / "bin/node"
    assert node.read_bytes()[18:20] == b"\xb7\x00"  # ELF e_machine: aarch64, the image's own architecture
    assert (image_root / "opt/nodejs/releases" / NODEJS_VERSION / ".installed").exists()


@pytest.fixture(scope="module")
def imported(built: Path, image_root: Path) -> Iterator[str]:
    tar = subprocess.Popen(["tar", "-C", str(image_root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "--arch", "arm64", "--change", 'CMD ["/sbin/init"]', "-", IMAGE_TAG],
        stdin=tar.stdout,
        check=True,
        capture_output=True,
    )
    assert tar.wait() == 0
    try:
        yield IMAGE_TAG
    finally:
        run("podman", "rmi", "--force", IMAGE_TAG, check=False)


class Booted:
    """A container booting the image with systemd (emulated arm64)."""

    def __init__(self, name: str, image: str, files: dict[str, str] | None = None) -> None:
        self.name = name
        run("podman", "rm", "--force", name, check=False)
        run("podman", "create", "--name", name, "--systemd=always", "--arch", "arm64", image, "/sbin/init")
        for path, content in (files or {}).items():
            staged = Path(f"/tmp/{name}-{Path(path).name}")
            staged.write_text(content)
            run("podman", "cp", str(staged), f"{name}:{path}")
            staged.unlink()
        run("podman", "start", name)

    def sh(self, command: str, check: bool = True) -> str:
        return run("podman", "exec", self.name, "sh", "-c", command, check=check).stdout.strip()

    def wait_for_firstboot(self, seconds: float = 300) -> dict[str, str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            props = self.unit_properties()
            # ConditionResult reads "no" until the condition is evaluated; its timestamp says it was, this boot.
            skipped = props.get("ConditionResult") == "no" and props.get("ConditionTimestampMonotonic", "0") != "0"
            if props.get("ActiveState") in ("active", "failed") or skipped:
                return props
            time.sleep(2)
        pytest.fail(f"claw-firstboot did not finish in {seconds} s: {self.unit_properties()}")

    def unit_properties(self) -> dict[str, str]:
        out = self.sh(
            "systemctl show claw-firstboot.service -p ActiveState -p Result -p ConditionResult"
            " -p ConditionTimestampMonotonic -p ExecMainStatus",
            check=False,
        )
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def restart(self) -> None:
        run("podman", "restart", "--time", "10", self.name)

    def remove(self) -> None:
        run("podman", "rm", "--force", "--time", "5", self.name, check=False)


@pytest.fixture(scope="module")
def first_boot(imported: str) -> Iterator[Booted]:
    node = Booted(CONTAINER, imported)
    try:
        yield node
    finally:
        node.remove()


def test_first_boot_names_the_device_and_makes_its_keys(first_boot: Booted):
    props = first_boot.wait_for_firstboot()
    assert props["ActiveState"] == "active" and props["Result"] == "success", props
    machine_id = first_boot.sh("cat /etc/machine-id")
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id)
    assert first_boot.sh("cat /etc/hostname") == f"claw-{machine_id[:6]}"
    assert first_boot.sh("grep -c '^127.0.1.1' /etc/hosts") == "1"
    assert first_boot.sh("ls /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_rsa_key | wc -l") == "2"
    assert first_boot.sh("test -s /var/lib/claw-firstboot/done && echo done") == "done"


def test_the_booted_image_runs_its_node(first_boot: Booted):
    first_boot.wait_for_firstboot()
    assert first_boot.sh("/opt/nodejs/current/bin/node --version") == f"v{NODEJS_VERSION}"


def test_first_boot_runs_once(first_boot: Booted):
    first_boot.wait_for_firstboot()
    before = first_boot.sh("cat /etc/hostname; sha256sum /etc/ssh/ssh_host_ed25519_key.pub")
    first_boot.restart()
    props = first_boot.wait_for_firstboot()
    assert props["ConditionResult"] == "no", props
    assert first_boot.sh("cat /etc/hostname; sha256sum /etc/ssh/ssh_host_ed25519_key.pub") == before


def test_the_boot_partition_file_names_the_device(imported: str):
    node = Booted(f"{CONTAINER}-named", imported, files={"/boot/firmware/claw-hostname": "Studio-Claw\n"})
    try:
        props = node.wait_for_firstboot()
        assert props["Result"] == "success", props
        # podman manages the container's /etc/hostname itself, so the hook's own report is read.
        chosen = node.sh("journalctl -b -u claw-firstboot.service -o cat | grep '^hostname: '")
        assert chosen == "hostname: studio-claw", node.sh("journalctl -b -u claw-firstboot.service -o cat")
    finally:
        node.remove()


def test_a_role_that_makes_secrets_is_refused_before_anything_changes(work: Path):
    output = work / "refused.img"
    result = playbook("-e", f"image_output={output}", "-e", '{"image_roles": ["base", "threadweaver"]}', timeout=300)
    assert result.returncode != 0
    assert "offline root" in result.stdout and "threadweaver" in result.stdout
    assert not output.exists() and not Path(f"{output}.partial").exists()
