# esm: AWS Lambda event source mappings, anywhere. See docs/operations.md.
#
#   docker build -t esm:0.1.0 .
#   docker run --rm -p 9090:9090 -v "$PWD/esm.yaml:/etc/esm/config.yaml:ro" esm:0.1.0
#
# The configuration is one mounted file, /etc/esm/config.yaml (a Kubernetes ConfigMap in
# deploy/kubernetes/). For `-p 9090:9090` or Kubernetes probes it must listen on 0.0.0.0:9090
# (`metrics: {listen: "0.0.0.0:9090"}`); the HEALTHCHECK below asks 127.0.0.1, which works either way.
# tests/unit/test_deploy.py lints this file with hadolint and checks it against the manifests;
# tests/integration/test_container_entrypoint.py runs its ENTRYPOINT + CMD as a process.

# Python 3.11 on Debian 12, pinned by tag and by the digest of its multi-architecture index.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# tini as PID 1: it forwards SIGTERM to esm (which drains in-flight batches) and reaps any
# process a handler leaves behind. Only its static binary is copied into the runtime image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1* \
 && rm -rf /var/lib/apt/lists/*

# Every dependency ships manylinux wheels, so no compiler is needed; the venv moves as one folder.
RUN python -m venv /opt/esm
WORKDIR /src
COPY pyproject.toml README.md ./
COPY esm ./esm
RUN /opt/esm/bin/pip install . \
 && /opt/esm/bin/esm version

FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

LABEL org.opencontainers.image.title="esm" \
      org.opencontainers.image.description="AWS Lambda event source mappings outside AWS: SQS, Kinesis and Kafka to any function" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it; its home is the working
# directory, where relative paths in the config (the default SQLite checkpoints) land.
RUN groupadd --system --gid 10001 esm \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/esm --create-home --shell /usr/sbin/nologin esm

COPY --from=build /usr/bin/tini-static /usr/bin/tini
COPY --from=build /opt/esm /opt/esm

ENV PATH=/opt/esm/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ESM_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz

WORKDIR /var/lib/esm
USER 10001:10001
EXPOSE 9090

# /healthz answers while the process and its event loop run. Set ESM_HEALTHCHECK_URL when the
# config listens on another port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/esm/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ESM_HEALTHCHECK_URL'], timeout=4)"]

STOPSIGNAL SIGTERM
# `docker run IMAGE validate --config /etc/esm/config.yaml` or `... status --url U` replace CMD.
ENTRYPOINT ["/usr/bin/tini", "--", "esm"]
CMD ["run", "--config", "/etc/esm/config.yaml", "--log-format", "json"]
