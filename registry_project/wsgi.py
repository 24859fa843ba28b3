"""WSGI entry point: ``gunicorn registry_project.wsgi`` serves the API and the admin."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

application = get_wsgi_application()
