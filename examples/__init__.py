"""Framework examples for mobilestatus (see README.md in this folder).

This file only makes ``examples.flask_app`` and ``examples.gunicorn_app``
importable from the repository root, e.g. ``flask --app examples.flask_app
run``; nothing here is part of the installed package.
"""
