"""Flask: an app factory and an extension that owns one shared Client.

Run it against the sandbox (no account, no cost)::

    python -m mobilestatus sandbox --port 8080      # prints the AppCode
    export MOBILESTATUS_APPCODE=<that AppCode>
    export MOBILESTATUS_BASE_URL=http://127.0.0.1:8080
    flask --app examples.flask_app run
    curl http://127.0.0.1:5000/check/13800138000
"""

from .app import create_app
from .extension import MobileStatus, mobilestatus

__all__ = ["create_app", "MobileStatus", "mobilestatus"]
