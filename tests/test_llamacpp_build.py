"""The llama.cpp engine is built for a portable CPU baseline, keyed by its flags, and smoke-tested before use.

The flags are rendered by Ansible's own templar from the role's defaults and vars, for CPUs described by their
/proc/cpuinfo features (an AMX Xeon, an x86-64 without AVX2, the Arm boards). The smoke check runs against a
stand-in ``llama_cpp`` module that crashes, hangs or answers, the ways a freshly built wheel behaves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from tests.ansible_render import trusted

ROLE = Path(__file__).resolve().parents[1] / "roles" / "llamacpp"
SMOKE = ROLE / "files" / "smoke.py"

AMX_XEON = (
    "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 bmi2 fma f16c avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8"
)
OLD_X86 = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt"
ORIN = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"


def render(
    expression: str,
    arch: str,
    cpu_flags: str,
    distribution: tuple[str, str] = ("Debian", "12"),
    python_minor: int = 11,
    **overrides: Any,
) -> Any:
    """``expression`` templated with the role's defaults and vars on a node of ``arch`` with ``cpu_flags``, running
    ``distribution`` (name, major version) with Python 3.``python_minor``."""
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        variables.update(trusted(loader.load_from_file(str(ROLE / name))))
    variables.update(trusted(overrides))
    variables["ansible_facts"] = {
        "architecture": arch,
        "distribution": distribution[0],
        "distribution_major_version": distribution[1],
        "python": {"version": {"major": 3, "minor": python_minor}},
    }
    variables["__llamacpp_cpu_flags"] = cpu_flags.split()
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


def cmake_options(args: str) -> dict[str, str]:
    """The -D options as CMake sees them: the last one of a name wins."""
    options: dict[str, str] = {}
    for word in args.split():
        if word.startswith("-D") and "=" in word:
            name, value = word[2:].split("=", 1)
            options[name] = value
    return options


@pytest.mark.parametrize(
    ("arch", "flags", "baseline"),
    [("x86_64", AMX_XEON, "x86-64-v3"), ("x86_64", OLD_X86, "x86-64"), ("aarch64", ORIN, "armv8-a")],
)
def test_default_build_is_portable_on_every_cpu(arch, flags, baseline):
    args = render("{{ _llamacpp_build_cmake_args }}", arch, flags)
    options = cmake_options(args)
    assert render("{{ _llamacpp_cpu_baseline.name }}", arch, flags) == baseline
    assert options["GGML_NATIVE"] == "OFF", args
    assert "native" not in args
    # Nothing beyond the baseline, however capable the building CPU: AMX's repacking crashed the first completion.
    for extension in ("GGML_AVX512", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AVX_VNNI"):
        assert options.get(extension, "OFF") == "OFF", (extension, args)
    assert baseline in render("{{ _llamacpp_wheel_key }}", arch, flags)
    assert options["LLAVA_BUILD"] == "OFF"  # text models only: the multimodal library is a quarter of the build


def test_baseline_instructions_are_ones_every_cpu_of_the_level_has():
    v3 = cmake_options(render("{{ _llamacpp_build_cmake_args }}", "x86_64", AMX_XEON))
    assert {name for name, value in v3.items() if value == "ON"} == {
        "GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_BMI2", "GGML_FMA", "GGML_F16C"
    }  # fmt: skip
    v1 = cmake_options(render("{{ _llamacpp_build_cmake_args }}", "x86_64", OLD_X86))
    assert [name for name, value in v1.items() if value == "ON"] == []
    arm = cmake_options(render("{{ _llamacpp_build_cmake_args }}", "aarch64", ORIN))
    assert arm["GGML_CPU_ARM_ARCH"] == "armv8-a"


def test_an_unknown_architecture_has_no_baseline():
    assert render("{{ _llamacpp_cpu_baseline.name | default('none') }}", "armv7l", "half thumb neon") == "none"


def test_every_change_of_flags_is_a_new_cache_key():
    """A change of flags rebuilds: a key per flag set, so a cached wheel of other flags is never found."""
    keys = {
        render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON),
        render("{{ _llamacpp_wheel_key }}", "x86_64", OLD_X86),
        render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON, llamacpp_cmake_args="-DGGML_BLAS=ON"),
        render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON, llamacpp_cpu_tuning="-DGGML_AVX512=ON"),
        render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON, llamacpp_version="0.3.35"),
    }
    assert len(keys) == 5, keys
    # The node's wheel directory is keyed the same way (the old `creates:` found any wheel of the version).
    assert render("{{ _llamacpp_wheel_dir }}", "x86_64", AMX_XEON).endswith(
        render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON)
    )


def test_tuning_is_appended_last_and_keys_the_wheel_to_this_cpu():
    tuned = render("{{ _llamacpp_build_cmake_args }}", "x86_64", AMX_XEON, llamacpp_cpu_tuning="-DGGML_AVX512=ON")
    assert cmake_options(tuned)["GGML_AVX512"] == "ON"
    key = render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON, llamacpp_cpu_tuning="-DGGML_NATIVE=ON")
    other_cpu = render(
        "{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON + " avx512_fp16", llamacpp_cpu_tuning="-DGGML_NATIVE=ON"
    )
    assert "-cpu" in key and key != other_cpu
    # Untuned, CPUs of one baseline share the wheel whatever else they have.
    assert render("{{ _llamacpp_wheel_key }}", "x86_64", AMX_XEON) == render(
        "{{ _llamacpp_wheel_key }}", "x86_64", "sse4_2 avx avx2 bmi2 fma f16c"
    )


# -- the smoke check after a build -----------------------------------------------------------------------------

FAKES = {
    "answers": """
        def llama_print_system_info(): return b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 |"
        class Llama:
            def __init__(self, model_path, **kw): self.path = model_path
            def create_completion(self, prompt, **kw):
                return {"choices": [{"text": " Paris."}], "usage": {"completion_tokens": 2}}
    """,
    "segfaults": """
        import os, signal
        def llama_print_system_info(): return b"CPU : AMX_INT8 = 1 |"
        class Llama:
            def __init__(self, model_path, **kw): pass
            def create_completion(self, prompt, **kw): os.kill(os.getpid(), signal.SIGSEGV)
    """,
    "hangs": """
        import time
        def llama_print_system_info(): return b"CPU : AVX2 = 1 |"
        class Llama:
            def __init__(self, model_path, **kw): pass
            def create_completion(self, prompt, **kw): time.sleep(60)
    """,
    "raises": """
        def llama_print_system_info(): return b"CPU : AVX2 = 1 |"
        class Llama:
            def __init__(self, model_path, **kw): raise ValueError(f"Failed to load model from file: {model_path}")
    """,
}


def smoke(tmp_path: Path, fake: str, *extra: str) -> tuple[int, dict[str, Any]]:
    package = tmp_path / fake / "llama_cpp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(FAKES[fake]))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    proc = subprocess.run(
        [sys.executable, str(SMOKE), str(model), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(package.parent), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def test_smoke_passes_a_wheel_that_answers(tmp_path):
    rc, report = smoke(tmp_path, "answers")
    assert rc == 0 and report["ok"] is True
    assert report["text"] == " Paris." and "AVX512 = 0" in report["system_info"]


def test_smoke_names_the_signal_of_a_crashing_wheel(tmp_path):
    rc, report = smoke(tmp_path, "segfaults")
    assert rc == 1 and report["ok"] is False
    assert report["error"] == "the completion process was killed by SIGSEGV"
    assert "AMX_INT8 = 1" in report["system_info"]  # what the crashing build was built with


def test_smoke_gives_up_on_a_wheel_that_never_answers(tmp_path):
    rc, report = smoke(tmp_path, "hangs", "--timeout", "2")
    assert rc == 1 and report["error"] == "no answer within 2 s"


def test_smoke_reports_a_model_that_does_not_load(tmp_path):
    rc, report = smoke(tmp_path, "raises")
    assert rc == 1 and report["error"] == "the completion process exited with status 1"
    assert any("Failed to load model" in line for line in report["stderr"])
