"""What the live transports (WebSocket, SSE) read from the settings; the live service has
its own (`api.live.service.LiveOptions`)."""

from dataclasses import dataclass

from api.settings import setting


@dataclass(frozen=True)
class TransportOptions:
    heartbeat_seconds: float = setting("live_heartbeat_seconds")
    init_timeout_seconds: float = setting("live_init_timeout_seconds")
    max_subscriptions_per_connection: int = setting("live_max_subscriptions_per_connection")
