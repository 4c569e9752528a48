"""WSGI entry point: ``gunicorn --preload -w 4 mysite.wsgi`` (from this
folder).  With --preload the settings and apps load once in the master;
the Client itself is created lazily, on the first check in each worker."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
