# syntax=docker/dockerfile:1
# Build: docker build -t moahook .
# Run:   docker run --env-file .env -v moahook-data:/data -p 8080:8080 moahook

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY moahook ./moahook
COPY bot ./bot
COPY kis ./kis
COPY webhook_server ./webhook_server
COPY storage ./storage
RUN python -m venv /opt/moahook \
 && /opt/moahook/bin/pip install --upgrade pip \
 && /opt/moahook/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/moahook/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MOAHOOK_DATA_DIR=/data \
    MOAHOOK_HOST=0.0.0.0 \
    MOAHOOK_PORT=8080
RUN groupadd --system moahook && useradd --system --gid moahook --home-dir /data moahook \
 && mkdir -p /data && chown moahook:moahook /data && chmod 0700 /data
COPY --from=build /opt/moahook /opt/moahook
USER moahook
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Slim images have no curl: the health check uses Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MOAHOOK_PORT','8080'), timeout=4).status == 200 else 1)"]
CMD ["moahook", "serve"]
