# PicoCluster Claw: the two commands are `make up` and `make test`.
# Every target sets up what it needs itself (apt packages, venv, base image).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV ?= .venv
TOOLS := $(CURDIR)/.cache/tools
export PATH := $(CURDIR)/$(VENV)/bin:$(TOOLS)/usr/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0
MOLECULE_SCENARIOS ?= default raspberrypi jetson ollama fleet upgrade local airgap
# make test's Molecule stages: `a+b` runs side by side (tools/stages.sh). The light scenarios mostly wait on their
# nodes (apt, systemd, health gates), so two or three share the machine; default runs alone (build, real inference).
# workstation-test and airgap follow default, whose llama.cpp build they reuse (the controller's cache).
MOLECULE_STAGES ?= molecule-default molecule-raspberrypi+molecule-jetson+molecule-ollama+molecule-local molecule-fleet+molecule-upgrade+workstation-test+molecule-airgap
DEMO := -i inventory/demo

.PHONY: help venv host up down status test test-slow lint docs pytest pytest-slow image-test workstation-test bundle molecule bench-provision bench-fleet bench-inference bench-mcp bench-exporters bench-threadweaver smeep-results lock constraints collection ee mutation

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

venv: ## Controller venv with the pinned tools (idempotent)
	@tools/bootstrap.sh

host: venv ## Container runtime and the bare Debian base image, no nodes
	ansible-playbook playbooks/demo.yml -e '{"demo_cluster_nodes": []}'

up: venv ## Build the two-node demo cluster and provision it with playbooks/site.yml
	ansible-playbook playbooks/demo.yml
	ansible-playbook $(DEMO) playbooks/site.yml
	ansible-playbook $(DEMO) playbooks/verify.yml

down: venv ## Remove the demo cluster (the base image stays cached)
	ansible-playbook playbooks/demo.yml -e demo_cluster_state=absent

status: venv ## Report on the demo cluster
	ansible-playbook $(DEMO) playbooks/verify.yml

test: ## Everything but emulation: linters, pytest, every Molecule scenario; a timestamped line per stage
	@tools/stages.sh venv host lint pytest $(MOLECULE_STAGES)

test-slow: ## Emulation- and registry-bound tests: the arm64 image under qemu, installs from a real offline bundle
	@tools/stages.sh venv host image-test pytest-slow

lint: venv ## ruff, yamllint, ansible-lint (production), role docs in sync, Python 3.10 compatibility
	ruff check .
	ruff format --check .
# The node-side Python must run on JetPack 6's Python 3.10: no 3.11-only syntax or stdlib (tomllib, except*,
# ExceptionGroup, typing.Self, datetime.UTC, enum.StrEnum, asyncio.TaskGroup/timeout, ...). A sys.version_info
# guard passes; a try/except ImportError fallback needs `# novermin` on the 3.11 import.
	vermin --target=3.10- --no-tips --violations --eval-annotations apps roles/ollama/files roles/llamacpp/files roles/*/library
	yamllint --strict .
	ansible-lint
	python tools/argspec_docs.py --check

bench-mcp: venv ## Benchmark: MCP tool latency (in-process, loopback HTTP), cold start and memory
	python benchmarks/perf/mcp.py

bench-exporters: venv ## Benchmark: exporter scrape latency and memory
	python benchmarks/perf/exporters.py

bench-threadweaver: venv ## Benchmark: ThreadWeaver's added latency (console, gateway) vs LiteLLM, streaming, search, memory
	python benchmarks/perf/threadweaver.py --peer litellm

smeep-results: venv ## SMEEP notebook: the demo model's ladder, suite, quantisation into benchmarks/smeep/results/ (SMEEP_PUBLISH_ARGS=...)
	nice -n 19 python -m smeep.publish $(SMEEP_PUBLISH_ARGS)

bundle: venv ## The air-gapped bundle (playbooks/bundle.yml; BUNDLE_DIR=... to choose where), see docs/air-gapped.md
	ansible-playbook playbooks/bundle.yml $(if $(BUNDLE_DIR),-e bundle_dir=$(BUNDLE_DIR))

collection: venv ## The Ansible collection picocluster.claw: dist/picocluster-claw-<version>.tar.gz (docs/fleets.md, AWX)
	python tools/build_collection.py

# The execution environment's build context (build/ee/context); with EE_BASE_IMAGE (the operator's base image,
# docs/fleets.md) the image too, tagged EE_TAG.
EE_TAG ?= picocluster-claw-ee:latest
ee: collection ## AWX execution environment: build/ee/context, and the image when EE_BASE_IMAGE=... is given
	ansible-builder create -f execution-environment.yml -c build/ee/context --output-filename Containerfile
	$(if $(EE_BASE_IMAGE),ansible-builder build -f execution-environment.yml -c build/ee/context -t $(EE_TAG) \
	  --build-arg EE_BASE_IMAGE=$(EE_BASE_IMAGE),@echo "ee: context in build/ee/context (EE_BASE_IMAGE=... builds the image)")

lock: venv ## Re-pin every hash-verified lock: the union locks, then one per venv and board (files/locks/)
	python tools/lock_runtime.py

docs: venv ## Regenerate the role README variable tables from meta/argument_specs.yml
	python tools/argspec_docs.py

pytest: venv $(TOOLS)/usr/bin/promtool /usr/bin/chromedriver ## Python tests (apps, benchmarks, tooling) on two workers
	pytest -m 'not slow and not compose and not engine_cache' --ignore=tests/image -n 2 --dist worksteal

mutation: venv ## Mutation testing (mutmut) of the guarded modules in tools/mutation.py: each one's tests kill >= 90%
	python tools/mutation.py

# After molecule-default: the tests that need the llama.cpp wheel and model it caches (the workstation's engine
# image, smeep quantise on the real model) never skip in make test.
workstation-test: venv ## playbooks/workstation.yml brought up under Podman (a real reply, down/up, upgrade); smeep quantise on the real model
	CLAW_ENGINE_CACHE_REQUIRED=1 pytest -m 'compose or engine_cache' tests/workstation tests/smeep

pytest-slow: venv ## Slow tests: installs from a real air-gapped bundle with no network (unshare -n), minutes
	pytest -m slow --ignore=tests/image

image-test: host ## playbooks/image.yml: an arm64 image built under qemu-user-static, booted in a container (root)
	pytest tests/image

# promtool (Debian's prometheus package) unpacked into .cache: checks exporter output and rules
# without installing or starting a Prometheus server on this machine.
$(TOOLS)/usr/bin/promtool:
	mkdir -p $(TOOLS)
	cd $(TOOLS) && { apt-get download prometheus 2>/dev/null || { apt-get update -qq && apt-get download prometheus; }; }
	cd $(TOOLS) && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb
	$@ --version | head -1

# Debian's chromium and its driver: ThreadWeaver's UI test drives the real page headless. They cannot be unpacked
# into .cache like promtool (chromium needs its shared libraries installed), so they are installed on the host.
/usr/bin/chromedriver:
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }; }
	$@ --version | head -1

molecule: host ## Molecule scenarios (MOLECULE_SCENARIOS="default jetson" to pick)
	for s in $(MOLECULE_SCENARIOS); do molecule test -s $$s; done

# One scenario (make molecule-jetson); the host stage is rerun only when the base image is missing.
molecule-%: venv
	@podman image exists localhost/picocluster-claw-base:bookworm 2>/dev/null || $(MAKE) --no-print-directory host
	molecule test -s $*

bench-provision: host ## Benchmark: first converge and no-op re-converge of both demo nodes
	python benchmarks/perf/provision.py

# --scale needs no container runtime (stand-in clusters over local connections): venv only.
bench-fleet: $(if $(findstring --scale,$(BENCH_FLEET_ARGS)),venv,host) ## Benchmark: one update wave of 1, 2, 4 and 8 clusters (BENCH_FLEET_ARGS="--clusters 1,2"; "--scale 50,200,1000": the controller's cost per cluster)
	python benchmarks/perf/fleet.py $(BENCH_FLEET_ARGS)

constraints: ## Re-pin requirements/constraints.txt from a fresh resolve
	rm -rf .cache/pin && python3 -m venv .cache/pin
	.cache/pin/bin/pip install --quiet -e '.[dev]' -e ./benchmarks
	.cache/pin/bin/pip install --quiet --no-deps blinkt rpi-lgpio
	{ sed -n '1,2p' requirements/constraints.txt; .cache/pin/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements/constraints.new
	mv requirements/constraints.new requirements/constraints.txt

bench-inference: ## Benchmark: the demo crush engine seen from the demo claw node (run `make up` first)
	podman cp benchmarks/perf/inference.py claw:/tmp/claw-bench-inference.py
	rss=$$(podman exec crush sh -c 'awk "/VmRSS/ {print \$$2}" /proc/$$(systemctl show -p MainPID --value llamacpp)/status'); \
	podman exec claw python3 /tmp/claw-bench-inference.py --url http://10.89.77.11:8080/v1 --model gemma3-270m --engine-rss-kib $$rss
