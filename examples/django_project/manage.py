#!/usr/bin/env python
"""Django's command-line utility for this example project.

    cd examples/django_project
    MOBILESTATUS_APPCODE=... MOBILESTATUS_BASE_URL=http://127.0.0.1:8080 \
        python manage.py runserver
    curl http://127.0.0.1:8000/check/13800138000
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
