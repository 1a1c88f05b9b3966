# OpenClaw's gateway as the openclaw role installs it: the package.json and package-lock.json the role pins for
# OPENCLAW_VERSION (roles/openclaw/files/<version>/), installed with `npm ci` (integrity checked, no install
# scripts), on the Node.js of the nodejs role (NODE_IMAGE: workstation_base_images.node, node:<nodejs_version>-...).
# Build context: the repository root.
ARG NODE_IMAGE
FROM ${NODE_IMAGE}
ARG OPENCLAW_VERSION
WORKDIR /opt/openclaw
COPY roles/openclaw/files/${OPENCLAW_VERSION}/package.json roles/openclaw/files/${OPENCLAW_VERSION}/package-lock.json ./
RUN test -n "${OPENCLAW_VERSION}" \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier \
 && npm cache clean --force \
 && node_modules/.bin/openclaw --version
ENV PATH=/opt/openclaw/node_modules/.bin:/usr/local/bin:/usr/bin:/bin \
    OPENCLAW_NO_RESPAWN=1 \
    HOME=/var/lib/openclaw
# Its state directories belong to the uid Compose runs it as (workstation_uid), so named volumes, which start
# as a copy of them, are writable by it.
ARG CLAW_UID=10001
ARG CLAW_GID=10001
RUN install -d -o "${CLAW_UID}" -g "${CLAW_GID}" -m 0750 /var/lib/openclaw
USER ${CLAW_UID}:${CLAW_GID}
CMD ["openclaw", "gateway", "run"]
