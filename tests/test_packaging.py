"""Two distributions: the appliance's wheel (claw, built by roles/claw_apps) and SMEEP (benchmarks/pyproject.toml)."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from tests.test_runtime_lock import REPO, load


class Module:
    """The little of AnsibleModule that claw_release.build_wheel uses."""

    def fail_json(self, **result: object) -> None:
        pytest.fail(f"the wheel build failed: {result}")


@pytest.fixture(scope="module")
def appliance_wheel(tmp_path_factory) -> Path:
    """The appliance's wheel, built the way claw_apps builds it for the nodes (a clean copy, SOURCE_DATE_EPOCH)."""
    release = load(REPO / "roles/claw_apps/library/claw_release.py", "claw_release")
    return release.build_wheel(Module(), REPO, tmp_path_factory.mktemp("release"), 315532800)


def test_the_appliance_wheel_carries_claw_and_no_smeep(appliance_wheel):
    with zipfile.ZipFile(appliance_wheel) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
        fields = wheel.read(entry_points.replace("entry_points.txt", "METADATA")).decode().splitlines()
    requires = {Requirement(line.partition(":")[2]).name for line in fields if line.startswith("Requires-Dist:")}
    assert appliance_wheel.name.startswith("picocluster_claw-")
    assert "claw/cli.py" in names and "claw/threadweaver/static/index.html" in names
    assert not [name for name in names if name.startswith("smeep")], "SMEEP ships in the appliance's wheel"
    assert "smeep" not in scripts and "claw = claw.cli:main" in scripts
    assert "fastapi" in requires and "matplotlib" not in requires


def test_smeep_is_its_own_distribution_in_the_controller_venv():
    dist = metadata.distribution("smeep")
    project = tomllib.loads((REPO / "benchmarks/pyproject.toml").read_text())["project"]
    assert dist.metadata["Name"] == project["name"] == "smeep"
    assert dist.read_text("top_level.txt").split() == ["smeep"]
    assert [entry.value for entry in dist.entry_points if entry.name == "smeep"] == ["smeep.cli:main"]
    assert {Requirement(line).name for line in dist.requires or []} == {"picocluster-claw", "matplotlib"}
    import smeep

    assert dist.version == smeep.__version__
    assert Path(smeep.__file__).resolve().is_relative_to(REPO / "benchmarks" / "smeep")
