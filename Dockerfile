# kgc serve: the HTTP sidecar in a container (docs/operations.md, "Deploy").
#
#   docker build -t kgc:0.1.0 .
#   docker run --read-only --tmpfs /tmp -p 3000:3000 -v kgc-data:/app/data \
#     -v "$PWD/config:/app/config:ro" -e KGC_CONFIG_FILE=/app/config/kgc.toml \
#     -e KGC_API_KEYS_FILE=/app/config/api-keys kgc:0.1.0
#
# The image runs as uid 1001 and writes nothing outside its volumes: /app/data (store,
# lockchain, policy packs; writable) and /tmp (scratch for backups and pack installs). /app/config
# is read: it holds kgc.toml and the api-keys file. tests/ops/test_container.py replays the
# ENV and RUN lines below in a fresh virtual environment and runs the HEALTHCHECK command as
# uid 1001 against a live `kgc serve`; keep each RUN a plain shell command for that reason.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/kgc \
    PATH=/opt/kgc/bin:$PATH

COPY pyproject.toml README.md /src/
COPY kgc /src/kgc

# A virtual environment owned by root: the service user can run it but never change it.
# Bytecode is compiled here, since the root file system is read-only at run time.
RUN python -m venv /opt/kgc && /opt/kgc/bin/pip install --no-cache-dir '/src[server,otel]' && /opt/kgc/bin/python -m compileall -q /opt/kgc/lib

# The service user (uid and gid 1001) and the directories it may write.
RUN groupadd --system --gid 1001 kgc && useradd --system --uid 1001 --gid 1001 --no-create-home --home-dir /app/data --shell /usr/sbin/nologin kgc && mkdir -p /app/data /app/config && chown 1001:1001 /app/data && rm -rf /src

ENV BASE_PATH=/app/data \
    KGC_HOST=0.0.0.0 \
    KGC_PORT=3000 \
    HOME=/app/data

VOLUME ["/app/data"]
WORKDIR /app/data
USER 1001:1001
EXPOSE 3000

# python:3.11-slim has no curl: ask /health with the standard library. Start-up reads the whole
# lockchain journal (about 80 microseconds a receipt) and may replay entries the store lacks, so
# failures count only after 300 s, the StatefulSet's startup allowance (150 probes, 2 s apart).
# A check that passes earlier marks the container healthy at once, so a quick start loses nothing.
HEALTHCHECK --interval=30s --timeout=3s --start-period=300s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('KGC_PORT', '3000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]

CMD ["kgc", "serve"]
