# syntax=docker/dockerfile:1
# One image for both processes: `opsagent serve` (the API, default) and `opsagent worker`.
#   docker build -t opsagent .
#   docker run -p 8080:8080 opsagent                 # API
#   docker run opsagent worker                       # queue worker (needs OPSAGENT_REDIS_URL)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: resolve and install into a venv that the runtime stage copies whole -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build

# Dependencies first, against an empty package, so a source change does not re-download the
# ~650 MB of dependencies (chromadb, onnxruntime) on every build.
COPY pyproject.toml README.md NOTICE ./
RUN mkdir -p src/opsagent && touch src/opsagent/__init__.py \
 && pip install --upgrade pip \
 && pip install . \
 && pip uninstall -y opsagent

# src/opsagent/runbooks and src/opsagent/prompts link to ../../runbooks and ../../prompts: the
# bundled runbooks and prompts become package data.
COPY runbooks/ ./runbooks/
COPY prompts/ ./prompts/
COPY src/ ./src/
RUN pip install --no-deps . \
 && opsagent --help >/dev/null

# ---- runtime: no compilers, no pip cache, not root ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} opsagent \
 && useradd --system --uid ${UID} --gid opsagent --create-home --home-dir /home/opsagent \
      --shell /usr/sbin/nologin opsagent \
 && mkdir -p /var/lib/opsagent \
 && chown opsagent:opsagent /var/lib/opsagent

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY runbooks/ ./runbooks/
COPY prompts/ ./prompts/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSAGENT_DATA_DIR=/var/lib/opsagent \
    OPSAGENT_RUNBOOKS_DIR=/app/runbooks \
    OPSAGENT_PROMPTS_DIR=/app/prompts

# A named volume mounted here inherits this ownership, so the non-root user can write to it.
VOLUME ["/var/lib/opsagent"]
USER ${UID}:${UID}
EXPOSE 8080

# No HEALTHCHECK here: the worker serves no HTTP, so the check belongs to the API's deployment
# (docker-compose.yml probes /healthz).
ENTRYPOINT ["opsagent"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
