# FaceCraft code location: the pinned environment on a CUDA runtime, served as a Dagster gRPC code server.
#   docker build -t facecraft:latest .
# The same image runs the webserver, the daemon and the MLflow server in docker-compose.yml.
# No secret is written into this image: passwords, tokens and webhook URLs arrive as environment
# variables at run time (docker compose .env / Kubernetes Secret).
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgl1 libglib2.0-0 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

# Python 3.11 (the project's pin; Ubuntu 24.04 ships 3.12) through uv's standalone builds.
COPY --from=ghcr.io/astral-sh/uv:0.9.5 /uv /usr/local/bin/uv
RUN uv python install 3.11 && uv venv --seed --python 3.11 /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH

WORKDIR /opt/facecraft
# Dependencies first (cached while only code changes), exactly as `make env` installs them.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir facecraft_pipeline && touch facecraft_pipeline/__init__.py \
 && pip install torch==2.14.1 torchvision==0.29.1 \
 && pip install -c constraints.txt -e . \
 && pip install --no-deps retinaface-pytorch==0.0.7
COPY facecraft_pipeline ./facecraft_pipeline
COPY dagster.yaml workspace.yaml ./
COPY deploy ./deploy

RUN useradd --create-home --uid 1000 facecraft \
 && mkdir -p /data /opt/dagster/home \
 && cp deploy/dagster-postgres.yaml /opt/dagster/home/dagster.yaml \
 && chown -R facecraft /data /opt/dagster/home && chmod 700 /data
USER facecraft
ENV FACECRAFT_HOME=/data \
    DAGSTER_HOME=/opt/dagster/home \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    HF_HUB_DISABLE_TELEMETRY=1
VOLUME ["/data"]
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "facecraft_pipeline.definitions"]
