from django.urls import path

from dashboard import consumers

websocket_urlpatterns = [
    path("ws/clusters/<slug:slug>/grid/", consumers.GridConsumer.as_asgi()),
]
