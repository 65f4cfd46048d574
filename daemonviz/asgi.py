"""ASGI entry point: HTTP through Django, websockets through Channels, and (in the
embedded default) the collectors running on the same event loop."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "daemonviz.settings")
# Django must be set up before anything imports models (the routing imports consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard.metrics import count_websockets  # noqa: E402
from dashboard.origin import SameOriginValidator  # noqa: E402
from dashboard.pipeline import embedded  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = embedded.wrap(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": count_websockets(
                SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            ),
        }
    )
)

# daphne creates its event loop (daphne.server.twisted_loop) before importing the
# application, but does not speak the ASGI lifespan protocol: start the collectors as soon
# as that loop runs, instead of waiting for the first visitor.
_daphne = sys.modules.get("daphne.server")
if _daphne is not None and os.environ.get("DAEMONVIZ_START_ON_IMPORT", "1") == "1":
    embedded.schedule_on(_daphne.twisted_loop)
