"""On a Jetson the llama.cpp engine is a CUDA build with JetPack's nvcc, chosen by a probe, still portable across CPUs.

The flags are rendered by Ansible's own templar from the role's defaults and vars with what the probe leaves
(the L4T release, the SoC's compute capability); the probe itself runs as the role's preflight, in check mode on
this machine, against an L4T release file, a device tree and an nvcc in a temporary directory. The smoke check's
verdict after a CUDA build is the role's own expression from tasks/build.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from tests.ansible_render import Node
from tests.test_llamacpp_build import ORIN, cmake_options
from tests.test_llamacpp_build import render as render_on

ROLE = Path(__file__).resolve().parents[1] / "roles" / "llamacpp"
R36 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"


def render(expression: str, l4t: str = "", probed: str = "", **overrides: Any) -> Any:
    """``expression`` templated with the role's defaults and vars on an aarch64 Ubuntu 22.04 node (the Orin's CPU)
    where the probe found L4T ``l4t`` ('' off a Jetson) and compute capability ``probed``."""
    probe = {"__llamacpp_l4t": l4t, "__llamacpp_cuda_probed": probed}
    return render_on(expression, "aarch64", ORIN, distribution=("Ubuntu", "22"), python_minor=10, **probe, **overrides)


def test_a_jetson_gets_a_portable_cuda_build_for_the_orin():
    assert render("{{ _llamacpp_accelerator }}", "36", "87") == "cuda"
    args = cmake_options(render("{{ _llamacpp_build_cmake_args }}", "36", "87"))
    assert args["GGML_CUDA"] == "on"
    assert args["CMAKE_CUDA_ARCHITECTURES"] == "87"
    assert args["CMAKE_CUDA_COMPILER"] == "/usr/local/cuda/bin/nvcc"  # JetPack's, not on root's PATH
    # The CPU code stays on the portable baseline: the wheel runs on every Orin, whichever one built it.
    assert args["GGML_NATIVE"] == "OFF"
    assert args["GGML_CPU_ARM_ARCH"] == "armv8-a"
    assert render("{{ _llamacpp_build_environment }}", "36", "87") == {
        "CUDACXX": "/usr/local/cuda/bin/nvcc",
        "CUDAToolkit_ROOT": "/usr/local/cuda",
    }


def test_off_a_jetson_the_build_stays_on_the_cpu():
    assert render("{{ _llamacpp_accelerator }}") == "cpu"
    args = render("{{ _llamacpp_build_cmake_args }}")
    assert "CUDA" not in args
    assert render("{{ _llamacpp_build_environment }}") == {}


def test_the_accelerator_can_be_forced_either_way():
    assert "GGML_CUDA" not in render("{{ _llamacpp_build_cmake_args }}", "36", "87", llamacpp_accelerator="cpu")
    args = cmake_options(
        render(
            "{{ _llamacpp_build_cmake_args }}",
            llamacpp_accelerator="cuda",
            llamacpp_cuda_architectures="87;72",
            llamacpp_cuda_home="/opt/cuda-12.6/",
        )
    )
    assert args["CMAKE_CUDA_ARCHITECTURES"] == "87;72"
    assert args["CMAKE_CUDA_COMPILER"] == "/opt/cuda-12.6/bin/nvcc"
    # A given value wins over the probe's.
    assert (
        cmake_options(render("{{ _llamacpp_build_cmake_args }}", "36", "87", llamacpp_cuda_architectures="72"))[
            "CMAKE_CUDA_ARCHITECTURES"
        ]
        == "72"
    )


def test_the_cuda_wheel_has_its_own_cache_key():
    cuda = render("{{ _llamacpp_wheel_key }}", "36", "87")
    cpu = render("{{ _llamacpp_wheel_key }}", "36", "87", llamacpp_accelerator="cpu")
    assert cuda != cpu
    assert "-cuda87-" in cuda and "cuda" not in cpu
    assert cuda.split("/", 1)[1].startswith("ubuntu22-aarch64-py310-armv8-a-cuda87-")


def test_the_server_offloads_every_layer_on_a_cuda_build():
    models = {"gemma3-270m": "/var/lib/llamacpp/models/gemma3-270m.gguf"}
    node = Node(["llamacpp"], host="crush", __llamacpp_model_paths=models, __llamacpp_l4t="36")
    config = json.loads(node.template("llamacpp", "config.json.j2"))
    assert [model["n_gpu_layers"] for model in config["models"]] == [-1] * len(config["models"])
    cpu = Node(["llamacpp"], host="crush", __llamacpp_model_paths=models, llamacpp_accelerator="cpu")
    assert all(
        "n_gpu_layers" not in model for model in json.loads(cpu.template("llamacpp", "config.json.j2"))["models"]
    )


# -- the smoke check after the build (tasks/build.yml's own verdict) ----------------------------------------------


def _smoke_verdict(accelerator: str, rc: int, report: dict[str, Any]) -> dict[str, Any]:
    tasks = yaml.safe_load((ROLE / "tasks" / "build.yml").read_text(encoding="utf-8"))
    (block,) = [task for task in tasks if task.get("name", "").startswith("Remove a wheel that cannot answer")]
    loader = DataLoader()
    variables = {
        "_llamacpp_accelerator": accelerator,
        "__llamacpp_smoke": {"rc": rc, "stdout": json.dumps(report), "stderr": ""},
    }
    templar = Templar(loader=loader, variables=variables)
    answer = templar.template(trust_as_template(block["vars"]["__llamacpp_smoke_answer"]))
    templar = Templar(loader=loader, variables={**variables, "__llamacpp_smoke_answer": answer})
    verdict = templar.template(trust_as_template(block["vars"]["__llamacpp_smoke_report"]))
    templar = Templar(loader=loader, variables={**variables, "__llamacpp_smoke_report": verdict})
    failed = templar.template(trust_as_template("{{ " + block["when"] + " }}"))
    return {"failed": failed, **verdict}


ANSWER = {"ok": True, "text": " Paris.", "system_info": "CPU : NEON = 1 | ARM_FMA = 1 |"}


def test_a_cuda_build_without_the_cuda_backend_fails_its_smoke_check():
    verdict = _smoke_verdict("cuda", 0, ANSWER)
    assert verdict["failed"] is True
    assert verdict["error"] == "it was built for CUDA, but llama.cpp reports no CUDA backend"
    cuda = {**ANSWER, "system_info": "CUDA : ARCHS = 870 | USE_GRAPHS = 1 | CPU : NEON = 1 |"}
    assert _smoke_verdict("cuda", 0, cuda)["failed"] is False
    assert _smoke_verdict("cpu", 0, ANSWER)["failed"] is False
    assert (
        _smoke_verdict("cuda", 1, {"ok": False, "error": "the completion process was killed by SIGSEGV"})["error"]
        == "the completion process was killed by SIGSEGV"
    )


# -- the probe, as the role's preflight runs it -----------------------------------------------------------------

PLAY = """
- name: The llamacpp {tasks}
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run it
      ansible.builtin.include_role:
        name: llamacpp
        tasks_from: {tasks}
"""
# The probe alone (tasks/probe.yml), and the whole preflight, which starts with it.
PROBE = PLAY.format(tasks="probe")
PREFLIGHT = PLAY.format(tasks="preflight")


@pytest.fixture
def board(tmp_path: Path) -> dict[str, Any]:
    """An L4T R36 release file, an Orin's device tree and an nvcc in tmp_path, as the probe's variables."""
    (tmp_path / "nv_tegra_release").write_text(R36)
    (tmp_path / "compatible").write_bytes(b"nvidia,p3768-0000+p3767-0005-super\0nvidia,p3767-0005\0nvidia,tegra234\0")
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.6, V12.6.68'\n")
    nvcc.chmod(0o755)
    return {
        "_llamacpp_l4t_release_file": str(tmp_path / "nv_tegra_release"),
        "_llamacpp_device_tree_compatible": str(tmp_path / "compatible"),
        "llamacpp_cuda_home": str(tmp_path / "cuda"),
    }


def _choice(output: str) -> str:
    match = re.search(r'"msg": "(llama\.cpp on localhost: [^"]*)"', output)
    assert match, output
    return match.group(1)


@pytest.mark.ansible
def test_the_probe_finds_the_orin_and_its_nvcc(run_playbook, board, tmp_path):
    result = run_playbook(PROBE, board)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"CUDA build for compute capability 87 with {tmp_path}/cuda/bin/nvcc" in _choice(result.stdout)


@pytest.mark.ansible
def test_the_probe_reads_the_soc_from_the_device_tree(run_playbook, board, tmp_path):
    (tmp_path / "nv_tegra_release").write_text(R36.replace("R36", "R35"))
    (tmp_path / "compatible").write_bytes(b"nvidia,p3668-0001\0nvidia,tegra194\0")  # a Xavier NX on JetPack 5
    result = run_playbook(PROBE, board)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CUDA build for compute capability 72 with" in _choice(result.stdout)


@pytest.mark.ansible
def test_a_jetson_without_nvcc_is_refused_before_any_change(run_playbook, board, tmp_path):
    (tmp_path / "cuda" / "bin" / "nvcc").unlink()
    result = run_playbook(PREFLIGHT, board)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert (
        f"llama.cpp is to be built for CUDA on localhost (a Jetson on L4T R36), but there is no nvcc at "
        f"{tmp_path}/cuda/bin/nvcc: install JetPack's CUDA toolkit"
    ) in output, output
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s", result.stdout), output
    # Built for the CPU instead, when asked.
    result = run_playbook(PROBE, {**board, "llamacpp_accelerator": "cpu"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert _choice(result.stdout).startswith("llama.cpp on localhost: CPU build")
