"""``cifar-edge serve``: the live annotated stream and an HTTP API, for boards without a screen.

``settings`` checks the options (bind address and auth rules, limits); ``stream`` runs a camera-demo
source through the classifier and the overlay into JPEG frames; ``mjpeg`` sends them to browsers;
``upload`` reads a bounded image upload; ``api`` holds the endpoints, ``auth`` the bearer-token check,
``headers`` the security headers, ``errors`` the JSON errors; ``app`` assembles them; ``server`` binds
the socket and runs uvicorn; ``cli`` registers the command. Starlette, uvicorn and python-multipart
(the ``serve`` extra) are imported only by the modules that need them, never by ``cli``'s registration.
"""
