# The optional llama.cpp engine as the llamacpp role installs it on crush: llama-cpp-python==LLAMACPP_VERSION and
# its server's dependencies from the hash-pinned per-board lock (copied into the bundle as
# locks/llamacpp-server.txt), and the models of crush_models (their sha256 pinned there). All from the air-gapped
# bundle that playbooks/bundle.yml gathered for this machine's architecture; role workstation checks these parts
# against the bundle's manifest just before the build.
# LLAMACPP_WHEEL is the wheel role llamacpp built with its portable CPU flags and cached on the controller
# (bundled under llamacpp/wheels/). Without one (a workstation that never built it), the build stage compiles it
# with the role's most portable CPU baseline for the architecture (GGML_NATIVE off), which needs a network.
# Build context: the bundle (workstation_bundle_dir). BASE_IMAGE comes from workstation_base_images.python.
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS wheel
ARG LLAMACPP_VERSION
ARG LLAMACPP_WHEEL
ARG CMAKE_ARGS_AMD64
ARG CMAKE_ARGS_ARM64
COPY llamacpp/wheels/ /tmp/bundle/llamacpp/wheels/
RUN mkdir /wheels \
 && if [ -n "${LLAMACPP_WHEEL}" ]; then \
      cp "/tmp/bundle/${LLAMACPP_WHEEL}" /wheels/; \
    else \
      case "$(dpkg --print-architecture)" in \
        amd64) export CMAKE_ARGS="${CMAKE_ARGS_AMD64}" ;; \
        arm64) export CMAKE_ARGS="${CMAKE_ARGS_ARM64}" ;; \
        *) echo "unsupported architecture $(dpkg --print-architecture)" >&2; exit 1 ;; \
      esac \
      && apt-get update && apt-get install --yes --no-install-recommends build-essential cmake \
      && python3 -m venv /tmp/build && /tmp/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels \
           "llama-cpp-python==${LLAMACPP_VERSION}"; \
    fi

FROM ${BASE_IMAGE}
ARG MODELS
COPY llamacpp/server-deps/ /tmp/bundle/llamacpp/server-deps/
COPY llamacpp/models/ /tmp/bundle/llamacpp/models/
COPY locks/llamacpp-server.txt /tmp/bundle/locks/
COPY --from=wheel /wheels /tmp/wheels
# llama.cpp's CPU backend links libgomp (the llamacpp role installs libgomp1 on crush): from the base image's own
# Debian release when the base lacks it.
RUN python3 -c "import ctypes.util, sys; sys.exit(0 if ctypes.util.find_library('gomp') else 1)" \
 || { apt-get update && apt-get install --yes --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; }
RUN python3 -m venv /opt/llamacpp/venv \
 && /opt/llamacpp/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/bundle/llamacpp/server-deps \
      --require-hashes --only-binary=:all: -r /tmp/bundle/locks/llamacpp-server.txt \
 && /opt/llamacpp/venv/bin/pip install --no-cache-dir --no-index --no-deps /tmp/wheels/*.whl \
 && /opt/llamacpp/venv/bin/pip check \
 && mkdir -p /opt/llamacpp/models \
 && printf '%s\n' "${MODELS}" | while read -r sha256 name; do \
      [ -n "$sha256" ] || continue; \
      mv "/tmp/bundle/llamacpp/models/$sha256.gguf" "/opt/llamacpp/models/$name.gguf" || exit 1; \
    done \
 && rm -rf /tmp/bundle /tmp/wheels \
 && /opt/llamacpp/venv/bin/python -c "import llama_cpp; print(llama_cpp.__version__)"
ENV PATH=/opt/llamacpp/venv/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp
ARG CLAW_UID=10001
ARG CLAW_GID=10001
USER ${CLAW_UID}:${CLAW_GID}
CMD ["python", "-m", "llama_cpp.server", "--config_file", "/etc/llamacpp/config.json"]
