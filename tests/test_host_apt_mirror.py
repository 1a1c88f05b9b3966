"""The demo image is built from the mirror the host's apt already uses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

MODULE = Path(__file__).parent.parent / "roles/demo_cluster/library/host_apt_mirror.py"
spec = importlib.util.spec_from_file_location("host_apt_mirror", MODULE)
assert spec and spec.loader
mirror = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mirror)

DEB822 = """\
Types: deb
URIs: http://mirror.example.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.test/debian-security
Suites: bookworm-security
Components: main
"""


def write_tree(root: Path, sources_list: str = "", **files: str) -> Path:
    (root / "sources.list.d").mkdir(parents=True)
    (root / "sources.list").write_text(sources_list)
    for name, text in files.items():
        (root / "sources.list.d" / name.replace("_", ".")).write_text(text)
    return root


def test_deb822_entry_serving_the_suite_is_chosen(tmp_path):
    root = write_tree(tmp_path, debian_sources=DEB822)
    assert mirror.pick_mirror(mirror.read_entries(str(root)), "bookworm") == ("http://mirror.example.test/debian")


def test_one_line_entry_with_options_is_parsed(tmp_path):
    line = "deb [arch=amd64 signed-by=/k.gpg] http://apt.example.test/debian/ bookworm main contrib\n"
    root = write_tree(tmp_path, sources_list="# a comment\n" + line)
    assert mirror.pick_mirror(mirror.read_entries(str(root)), "bookworm") == ("http://apt.example.test/debian")


def test_other_suite_falls_back_to_a_debian_archive(tmp_path):
    text = DEB822.replace("bookworm", "trixie")
    root = write_tree(tmp_path, debian_sources=text)
    assert mirror.pick_mirror(mirror.read_entries(str(root)), "bookworm") == ("http://mirror.example.test/debian")


def test_disabled_and_source_only_entries_are_ignored(tmp_path):
    text = DEB822.replace("Types: deb\nURIs", "Types: deb-src\nURIs", 1)
    text += "\nTypes: deb\nURIs: http://off.example.test/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n"
    root = write_tree(tmp_path, debian_sources=text)
    assert mirror.pick_mirror(mirror.read_entries(str(root)), "bookworm") is None


@pytest.mark.parametrize(
    "sources_list",
    ["deb http://archive.example.test/ubuntu jammy main universe\n", ""],
)
def test_no_debian_mirror_gives_none(tmp_path, sources_list):
    root = write_tree(tmp_path, sources_list=sources_list)
    assert mirror.pick_mirror(mirror.read_entries(str(root)), "bookworm") is None
