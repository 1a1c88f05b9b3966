# OpenClaw's gateway as the openclaw role installs it from an air-gapped bundle: Node.js and npm of the nodejs
# role's pins (the npm packages node-linux-<cpu> and npm), and OpenClaw's locked tree (roles/openclaw/files/<v>/,
# each tarball checked against the lock's integrity when the bundle gathered it, and by npm ci) installed with
# `npm ci --offline --ignore-scripts`. Role workstation checks these parts against the bundle's manifest just
# before the build.
# Build context: the bundle (workstation_bundle_dir). BASE_IMAGE comes from workstation_base_images.python.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG NODE_PACKAGE
ARG NPM_PACKAGE
ARG OPENCLAW_VERSION
COPY nodejs/ /tmp/bundle/nodejs/
COPY npm/openclaw-${OPENCLAW_VERSION}/ /tmp/bundle/npm/openclaw-${OPENCLAW_VERSION}/
COPY locks/openclaw/ /opt/openclaw/
RUN test -n "${NODE_PACKAGE}" -a -n "${NPM_PACKAGE}" -a -n "${OPENCLAW_VERSION}" \
 && mkdir -p /opt/node/lib/node_modules/npm \
 && tar -xzf "/tmp/bundle/nodejs/${NODE_PACKAGE}" -C /opt/node --strip-components=1 \
 && tar -xzf "/tmp/bundle/nodejs/${NPM_PACKAGE}" -C /opt/node/lib/node_modules/npm --strip-components=1 \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /opt/node/bin/npm \
 && cd /opt/openclaw \
 && PATH=/opt/node/bin:$PATH HOME=/tmp npm ci --offline --omit=dev --ignore-scripts --no-audit --no-fund \
      --no-update-notifier --cache /tmp/npm-cache \
 && rm -rf /tmp/bundle /tmp/npm-cache \
 && PATH=/opt/node/bin:$PATH node_modules/.bin/openclaw --version
ENV PATH=/opt/openclaw/node_modules/.bin:/opt/node/bin:/usr/local/bin:/usr/bin:/bin \
    OPENCLAW_NO_RESPAWN=1 \
    HOME=/var/lib/openclaw
# Its state directory belongs to the uid Compose runs it as (workstation_uid), so the named volume, which starts
# as a copy of it, is writable by it.
ARG CLAW_UID=10001
ARG CLAW_GID=10001
RUN install -d -o "${CLAW_UID}" -g "${CLAW_GID}" -m 0750 /var/lib/openclaw
USER ${CLAW_UID}:${CLAW_GID}
CMD ["openclaw", "gateway", "run"]
