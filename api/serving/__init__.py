"""The HTTP server in front of the ASGI app: uvicorn, with limits on what a connection may hold."""
