from django.urls import path

from dashboard.grid.consumers import GridConsumer
from dashboard.wall.consumers import WallConsumer

websocket_urlpatterns = [
    path("ws/clusters/<slug:slug>/grid/", GridConsumer.as_asgi()),
    # Token access, no sign-in (dashboard/access.py); the token is redacted from logs.
    path("ws/wall/<str:token>/", WallConsumer.as_asgi()),
]
