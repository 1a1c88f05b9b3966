# The claw apps image: this checkout's `claw` wheel and its runtime dependencies, installed from the same
# hash-pinned lock the claw_apps role installs on the nodes (roles/claw_apps/files/runtime-requirements.txt).
# One image serves ThreadWeaver, the MCP servers, the LED daemon (simulated strip) and watcher, and the exporters,
# each with its own command (roles/workstation/templates/compose.yaml.j2).
# Build context: the repository root. BASE_IMAGE comes from workstation_base_images.python (exact tag or digest).
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS build
WORKDIR /src
# setuptools at the controller's pin (requirements/constraints.txt), as claw_apps builds the wheel: no isolation.
COPY requirements/constraints.txt requirements/constraints.txt
RUN grep -E '^setuptools==' requirements/constraints.txt > /tmp/setuptools.txt \
 && pip install --no-cache-dir -r /tmp/setuptools.txt
COPY pyproject.toml README.md ./
COPY apps apps
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${BASE_IMAGE}
COPY roles/claw_apps/files/runtime-requirements.txt /tmp/runtime-requirements.txt
RUN python -m venv /opt/claw/venv \
 && /opt/claw/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/runtime-requirements.txt \
 && rm /tmp/runtime-requirements.txt
COPY --from=build /wheels /tmp/wheels
RUN /opt/claw/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels \
 && /opt/claw/venv/bin/claw --help > /dev/null
ENV PATH=/opt/claw/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Never root: Compose runs it as your own uid (workstation_uid), so it reads the files the play wrote for you.
# Its state directories belong to the uid Compose runs it as (workstation_uid), so named volumes, which start
# as a copy of them, are writable by it.
ARG CLAW_UID=10001
ARG CLAW_GID=10001
RUN install -d -o "${CLAW_UID}" -g "${CLAW_GID}" -m 0750 /run/claw-leds /var/lib/threadweaver /var/lib/claw-mcp /var/lib/claw-mcp/sandbox
USER ${CLAW_UID}:${CLAW_GID}
CMD ["claw", "--help"]
