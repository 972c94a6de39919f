# syntax=docker/dockerfile:1.7
#
# Heedful guardrail proxy image.
#   docker build -t heedful:dev .
#   docker run --rm -p 8080:8080 --read-only -e HEEDFUL_UPSTREAM=https://api.openai.com/v1 \
#     -e HEEDFUL_UPSTREAM_API_KEY=sk-... heedful:dev
#
# Stage 1 builds a virtualenv in /opt/heedful from the hash-pinned requirements.lock (runtime deps only;
# no torch, no training extras) plus the heedful wheel, which carries the ONNX model as package data.
# Stage 2 copies only that virtualenv and the default policies onto a clean slim base: no compilers, no
# build backend, no pip cache. The root filesystem can be read-only; only /tmp is written.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

############################ build ############################
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

# Build backend in its own throwaway venv (pinned with hashes), so it never lands in the runtime venv.
COPY deploy/requirements-build.lock /tmp/requirements-build.lock
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --no-deps --require-hashes --only-binary=:all: -r /tmp/requirements-build.lock

# Runtime dependencies first (cached layer while only the source changes).
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/heedful \
 && /opt/heedful/bin/pip install --no-deps --require-hashes --only-binary=:all: -r /tmp/requirements.lock

# The project itself, as a wheel (the model ships inside it as package data), installed with --no-deps so
# nothing outside the lock can sneak in.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY classifiers ./classifiers
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && /opt/heedful/bin/pip install --no-deps --no-index /tmp/wheels/heedful-*.whl \
 && /opt/heedful/bin/python -m compileall -q /opt/heedful/lib \
 && /opt/heedful/bin/pip uninstall --yes --quiet pip

############################ runtime ############################
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="heedful" \
      org.opencontainers.image.description="OpenAI-compatible guardrail proxy: scores LLM draft replies and repairs them under policy" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 heedful \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin heedful

COPY --from=build /opt/heedful /opt/heedful
# Default policies so the image runs on its own; Kubernetes mounts a ConfigMap over this directory.
COPY --chown=0:0 policies/ /etc/heedful/policies/

# HOME and TMPDIR point at /tmp, the only writable path (an emptyDir in Kubernetes).
ENV PATH=/opt/heedful/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    HEEDFUL_HOST=0.0.0.0 \
    HEEDFUL_PORT=8080 \
    HEEDFUL_POLICIES=/etc/heedful/policies

VOLUME ["/tmp"]
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080

# python, not curl: the slim base has no curl. Any exception (refused, timeout, non-2xx) exits non-zero.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

ENTRYPOINT ["/opt/heedful/bin/heedful", "serve", "--host", "0.0.0.0", "--port", "8080"]
