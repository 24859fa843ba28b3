#!/bin/sh
# Container entrypoint of the Model Registry.
#
#   web      (default) wait for the database, migrate (creates the schema), admin user, schedules,
#            provider sources from the environment and their first discovery, static files collected
#            when the manifest storage lacks them (a checkout run from source), then exec the web
#            server (granian, WSGI; configured by registry_project/web.py from WEB_* variables)
#   worker   wait for the database, exec a Celery worker
#   beat     wait for the database, exec Celery beat (django-celery-beat's database scheduler)
#   prepare  the web's preparation steps only, then exit (one-off jobs, tests)
#   anything else is executed as given (a shell, manage.py ...)
set -eu

cd "$(dirname "$0")/.."

# Each container has its own Prometheus multiprocess directory (pids are per container), emptied
# at start: files of an earlier run would add stale counts.
PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
export PROMETHEUS_MULTIPROC_DIR

reset_metrics_dir() {
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
}

wait_for_database() {
    python manage.py wait_for_database --timeout "${DB_WAIT_SECONDS:-60}"
}

prepare() {
    wait_for_database
    python manage.py migrate --noinput
    python manage.py ensure_admin
    python manage.py register_schedules
    python manage.py register_sources --discover
    python manage.py ensure_static
}

command="${1:-web}"
case "$command" in
    web)
        reset_metrics_dir
        prepare
        exec python -m registry_project.web
        ;;
    worker)
        reset_metrics_dir
        wait_for_database
        # -q: no banner; every line is a log record in the service's format (registry_project/celery.py).
        exec celery -A registry_project -q worker --loglevel "${LOG_LEVEL:-info}" \
            --concurrency "${CELERY_WORKER_CONCURRENCY:-2}"
        ;;
    beat)
        reset_metrics_dir
        wait_for_database
        # No schedule file: django-celery-beat keeps the schedule in the database.
        exec celery -A registry_project -q beat --loglevel "${LOG_LEVEL:-info}" --pidfile=
        ;;
    prepare)
        reset_metrics_dir
        prepare
        ;;
    *)
        exec "$@"
        ;;
esac
