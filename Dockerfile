# Model Registry: one image for the web process (default), the Celery worker and beat.
#   docker build -t alfred-model-registry .
#   docker run ... alfred-model-registry            # web on 8700 (granian, WSGI)
#   docker run ... alfred-model-registry worker     # Celery worker
#   docker run ... alfred-model-registry beat       # Celery beat
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# No system packages: psycopg[binary] brings its own libpq, and the health check is Python's.
RUN groupadd --system --gid 10001 registry \
    && useradd --system --uid 10001 --gid registry --home-dir /app --shell /usr/sbin/nologin registry

WORKDIR /app

# Dependencies in their own layer, from the production lock (every package pinned with its hashes, the
# same file `make install` and CI's production smoke test install): rebuilt only when the lock changes.
COPY requirements.txt .
RUN python -m venv "$VIRTUAL_ENV" && pip install --require-hashes -r requirements.txt

COPY . .

# Static files (admin, API docs) collected with whitenoise's manifest (STATIC_MANIFEST), so the web
# process finds them ready (entrypoint.sh's ensure_static collects only what is missing). DEBUG=true
# only lets the settings load without secrets during this step; nothing of it is kept in the image.
RUN DEBUG=true STATIC_MANIFEST=true python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/data \
    && chown -R registry:registry /app/data \
    && chmod 0755 docker/entrypoint.sh

USER registry

ENV PORT=8700 \
    HOST=0.0.0.0 \
    REGISTRY_DATA_DIR=/app/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

EXPOSE 8700

# /health with a Host header that ALLOWED_HOSTS accepts (registry_project/healthcheck.py); the compose
# file gives beat its own check (its heartbeat) and the worker Celery's ping.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "registry_project.healthcheck", "web"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
