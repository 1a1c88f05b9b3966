# Optional Prometheus (Compose profile "monitoring"), from the same source as the prometheus role: Debian's
# `prometheus` package (the role pins no version of its own; BASE_IMAGE, an exact Debian tag or digest from
# workstation_base_images.debian, fixes the release), with the appliance's alert rules (files/prometheus/rules).
# Build context: the repository root.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install --yes --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && promtool --version
COPY files/prometheus/rules/ /etc/prometheus/rules/
# Its state directories belong to the uid Compose runs it as (workstation_uid), so named volumes, which start
# as a copy of them, are writable by it.
ARG CLAW_UID=10001
ARG CLAW_GID=10001
RUN install -d -o "${CLAW_UID}" -g "${CLAW_GID}" -m 0750 /var/lib/prometheus
USER ${CLAW_UID}:${CLAW_GID}
ENTRYPOINT ["prometheus"]
