from django.urls import path

from dashboard import consumers

websocket_urlpatterns = [
    path("ws/clusters/<slug:slug>/grid/", consumers.GridConsumer.as_asgi()),
    # Token access, no sign-in (dashboard/access.py); the token is redacted from logs.
    path("ws/wall/<str:token>/", consumers.WallConsumer.as_asgi()),
]
