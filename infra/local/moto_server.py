"""Embedded AWS emulator for local development and tests: moto in server mode.

moto answers requests on parallel threads and its DynamoDB backend takes no lock, so two concurrent
conditional writes can both pass their condition (a lost update real DynamoDB never allows). This
launcher wraps moto's own WSGI application and serialises every DynamoDB request, consuming the
response body inside the lock; other services (SQS long polls above all) still run in parallel.
"""

import argparse
import os
import signal
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerialisedDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the body while holding the lock: the write is only finished once the
            # response has been produced.
            return [b"".join(self.app(environ, start_response))]


def exit_with_parent() -> None:
    """Stops the emulator when the process that started it is gone, however it ended."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    exit_with_parent()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialisedDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
