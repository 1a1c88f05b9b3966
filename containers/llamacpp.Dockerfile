# The optional llama.cpp engine as the llamacpp role builds it: llama-cpp-python==LLAMACPP_VERSION compiled with the
# role's most portable CPU baseline for the target architecture (GGML_NATIVE off: the image runs on any CPU of its
# architecture), its server dependencies from the role's pinned constraints, and the models of crush_models from
# their Python packages, each checked against its pinned sha256. Build context: the repository root.
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS build
ARG LLAMACPP_VERSION
ARG CMAKE_ARGS_AMD64
ARG CMAKE_ARGS_ARM64
ARG TARGETARCH
RUN apt-get update \
 && apt-get install --yes --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH:-$(dpkg --print-architecture)}" in \
      amd64) export CMAKE_ARGS="${CMAKE_ARGS_AMD64}" ;; \
      arm64) export CMAKE_ARGS="${CMAKE_ARGS_ARM64}" ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels "llama-cpp-python==${LLAMACPP_VERSION}"

FROM ${BASE_IMAGE}
ARG LLAMACPP_VERSION
ARG MODELS
COPY roles/llamacpp/files/constraints-${LLAMACPP_VERSION}.txt /tmp/constraints.txt
COPY --from=build /wheels /tmp/wheels
RUN python -m venv /opt/llamacpp/venv \
 && /opt/llamacpp/venv/bin/pip install --no-cache-dir -c /tmp/constraints.txt \
      "llama-cpp-python[server]==${LLAMACPP_VERSION}" --find-links /tmp/wheels \
 && rm -rf /tmp/wheels /tmp/constraints.txt
# One model per line: "<python_package> <python_module> <sha256> <name>" (rendered from crush_models).
RUN mkdir -p /opt/llamacpp/models && printf '%s\n' "${MODELS}" | while read -r package module sha256 name; do \
      [ -n "$package" ] || continue; \
      python -m venv /tmp/model && /tmp/model/bin/pip install --no-cache-dir "$package" \
      && /tmp/model/bin/python -c "import sys, $module as m; m.assemble(sys.argv[1], overwrite=True)" "/opt/llamacpp/models/$name.gguf" \
      && echo "$sha256  /opt/llamacpp/models/$name.gguf" | sha256sum -c - \
      && rm -rf /tmp/model || exit 1; \
    done
ENV PATH=/opt/llamacpp/venv/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp
ARG CLAW_UID=10001
ARG CLAW_GID=10001
USER ${CLAW_UID}:${CLAW_GID}
CMD ["python", "-m", "llama_cpp.server", "--config_file", "/etc/llamacpp/config.json"]
