# The claw apps image: this checkout's `claw` wheel and its runtime dependencies, from the air-gapped bundle that
# playbooks/bundle.yml gathered for this machine's architecture (role workstation checks the parts it installs
# against the bundle's manifest just before the build), the dependencies installed from the same hash-pinned
# per-board lock the claw_apps role installs on the nodes (copied into the bundle as locks/claw-runtime.txt),
# nothing fetched from a network. The manifest itself is not copied: a bundle that grows elsewhere (a new OpenClaw
# tarball) leaves this image's layers cached.
# One image serves ThreadWeaver, the MCP servers, the LED daemon (simulated strip) and watcher, and the exporters,
# each with its own command (roles/workstation/templates/compose.yaml.j2).
# Build context: the bundle (workstation_bundle_dir). BASE_IMAGE comes from workstation_base_images.python.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG CLAW_WHEEL
COPY python/ /tmp/bundle/python/
COPY locks/claw-runtime.txt /tmp/bundle/locks/
RUN test -n "${CLAW_WHEEL}" \
 && python3 -m venv /opt/claw/venv \
 && /opt/claw/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/bundle/python \
      --require-hashes --only-binary=:all: -r /tmp/bundle/locks/claw-runtime.txt \
 && /opt/claw/venv/bin/pip install --no-cache-dir --no-index --no-deps "/tmp/bundle/python/${CLAW_WHEEL}" \
 && /opt/claw/venv/bin/pip check \
 && rm -rf /tmp/bundle \
 && /opt/claw/venv/bin/claw --help > /dev/null
ENV PATH=/opt/claw/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Never root: Compose runs it as workstation_uid. Its state directories belong to that uid, so named volumes,
# which start as a copy of them, are writable by it.
ARG CLAW_UID=10001
ARG CLAW_GID=10001
RUN install -d -o "${CLAW_UID}" -g "${CLAW_GID}" -m 0750 /run/claw-leds /var/lib/threadweaver /var/lib/claw-mcp /var/lib/claw-mcp/sandbox
USER ${CLAW_UID}:${CLAW_GID}
CMD ["claw", "--help"]
