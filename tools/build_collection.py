"""Build the Ansible collection picocluster.claw from this repository (make collection).

The collection is staged from the repository's own files, never from copies kept in git, into
build/collection/ansible_collections/picocluster/claw, then `ansible-galaxy collection build` writes
dist/picocluster-claw-<version>.tar.gz (the version is pyproject.toml's). What it holds:

  roles/                   every role but the controller-local ones (demo_cluster, image, firstboot)
  plugins/modules/         the roles' own modules (roles/*/library): a collection's roles load no modules from their
                           library/, their short module names resolve in the collection (picocluster.claw.claw_release);
                           library/ stays in the role as files (release copies release_links.py onto the node)
  playbooks/               site.yml, update.yml, rollback.yml, verify.yml, models.yml and what they import
                           (common/crush/claw.yml, nodes/, tasks/) and group_vars/: the appliance-wide defaults,
                           beside the playbooks exactly as in the repository (see docs/fleets.md, "AWX")
  playbooks/filter_plugins the fleet filters, as update.yml calls them (short names, from the playbook's directory)
  plugins/filter/          the same filters for anyone else (playbooks/filter_plugins/*.py): picocluster.claw.fleet_plan
  plugins/callback/        the appliance's stdout callback: picocluster.claw.claw
  pyproject.toml, README.md, apps/, files/
                           what roles reach as role_path/../..: the claw package's sources that claw_apps builds
                           its wheel from (claw_apps_source_dir), apps/claw/bundle.py, files/prometheus/rules

Beside it, build/ee/requirements.yml: the Galaxy requirements of execution-environment.yml, naming this tarball.

  python tools/build_collection.py [--output DIR]     # prints the tarball's path
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parent.parent
NAMESPACE, NAME = "picocluster", "claw"
# Roles that run on the controller only, for a developer or an image build, never against a fleet.
CONTROLLER_ROLES = {"demo_cluster", "image", "firstboot"}
# The playbooks an operator runs (verify and models are read-only or node-local), and those site.yml imports.
PLAYBOOKS = ("site.yml", "update.yml", "rollback.yml", "verify.yml", "models.yml")
PLAYBOOKS += ("common.yml", "crush.yml", "claw.yml")
PLAYBOOK_DIRS = ("nodes", "tasks", "group_vars", "filter_plugins")
# (source, destination) beside the roles and playbooks.
TREES = (
    ("pyproject.toml", "pyproject.toml"),
    ("README.md", "README.md"),
    ("apps", "apps"),
    ("files", "files"),
    ("plugins/callback/claw.py", "plugins/callback/claw.py"),
)
# The collections the roles call modules and filters of (the `ansible` package the controller pins carries them).
DEPENDENCIES = {"ansible.posix": ">=1.5.0", "community.crypto": ">=2.0.0", "community.general": ">=8.0.0"}
DEBRIS = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".pytest_cache", ".ruff_cache")


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def galaxy(version: str) -> dict:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": version,
        "readme": "README.md",
        "authors": ["PicoCluster Claw"],
        "description": "The PicoCluster Claw appliance: node roles, site/update/rollback playbooks, fleet filters",
        "license": [project["license"]["text"]],
        "tags": ["appliance", "fleet", "llm", "raspberrypi", "jetson"],
        "dependencies": DEPENDENCIES,
        "build_ignore": ["**/__pycache__", "*.pyc", "*.egg-info"],
    }


def copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, ignore=DEBRIS)
    else:
        shutil.copy2(source, dest)


def stage(root: Path, version: str) -> Path:
    """The collection's tree under root/ansible_collections/picocluster/claw (replaced if there)."""
    collection = root / "ansible_collections" / NAMESPACE / NAME
    if collection.exists():
        shutil.rmtree(collection)
    collection.mkdir(parents=True)
    modules: dict[str, Path] = {}
    for role in sorted((REPO / "roles").iterdir()):
        if role.is_dir() and role.name not in CONTROLLER_ROLES:
            copy(role, collection / "roles" / role.name)
            for module in sorted((role / "library").glob("*.py")):
                if module.name in modules:
                    sys.exit(f"build_collection: {module} and {modules[module.name]} share a name in plugins/modules")
                modules[module.name] = module
                copy(module, collection / "plugins" / "modules" / module.name)
    for name in PLAYBOOKS + PLAYBOOK_DIRS:
        copy(REPO / "playbooks" / name, collection / "playbooks" / name)
    for source, dest in TREES:
        copy(REPO / source, collection / dest)
    for plugin in sorted((REPO / "playbooks" / "filter_plugins").glob("*.py")):
        copy(plugin, collection / "plugins" / "filter" / plugin.name)
    runtime = {"requires_ansible": ">=2.19.0"}
    (collection / "meta").mkdir()
    (collection / "meta" / "runtime.yml").write_text("---\n" + yaml.safe_dump(runtime, sort_keys=False))
    (collection / "galaxy.yml").write_text("---\n" + yaml.safe_dump(galaxy(version), sort_keys=False))
    return collection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "dist", help="where the tarball goes (default dist/)")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "collection", help="the staging tree")
    args = parser.parse_args()
    current = version()
    collection = stage(args.build_dir.resolve(), current)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    # One tarball of this collection in the output: the execution environment copies it by pattern.
    for old in output.glob(f"{NAMESPACE}-{NAME}-*.tar.gz"):
        old.unlink()
    galaxy_cli = Path(sys.executable).with_name("ansible-galaxy")
    command = [str(galaxy_cli if galaxy_cli.exists() else "ansible-galaxy"), "collection", "build", "--force"]
    subprocess.run([*command, "--output-path", str(output), str(collection)], check=True, stdout=subprocess.DEVNULL)
    tarball = output / f"{NAMESPACE}-{NAME}-{current}.tar.gz"
    if not tarball.is_file():
        sys.exit(f"build_collection: ansible-galaxy wrote no {tarball}")
    # The execution environment's Galaxy requirements: this tarball, which its definition copies into the build
    # context's collections/ (the collection's own dependencies come with the `ansible` package it pins).
    requirements = {"collections": [{"name": f"collections/{tarball.name}", "type": "file"}]}
    ee = args.build_dir.resolve().parent / "ee"
    ee.mkdir(parents=True, exist_ok=True)
    (ee / "requirements.yml").write_text("---\n" + yaml.safe_dump(requirements, sort_keys=False))
    print(tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
