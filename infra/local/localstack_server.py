"""LocalStack's runtime in host mode (no Docker), with two changes so that several instances can run
side by side on one machine without touching each other or being reachable from outside it:

1. LocalStack's default gateway server (twisted) ignores the host part of GATEWAY_LISTEN for IPv4 and
   listens on every interface (0.0.0.0:<port>) whatever it says. Here the host is passed on as the
   listening interface, so GATEWAY_LISTEN=127.0.0.1:<port> listens on loopback only.
2. Its S3 provider keeps object bodies under a fixed /tmp/localstack-s3-storage/<bucket>, shared by
   every instance on the machine (and a DeleteBucket removes that folder, whoever else uses it).
   --s3-storage-dir moves it into the instance's own folder.

Then LocalStack's own entry point (localstack.runtime.main) runs unchanged, with two changes to how
it stops: its output may go to a parent that has died (writes to the closed pipe are dropped, else
LocalStack's SIGTERM handler dies of the BrokenPipeError before it starts the shutdown), and once it
has shut down ("Completed, bye!") the process exits at once: Python's own finalisation
(garbage-collecting the service models it loaded) otherwise adds about 5 s to every stop.
"""

import argparse
import logging
import os
import sys

from twisted.internet import endpoints

import localstack.services.s3.provider as s3_provider
from localstack import config
from localstack.runtime import main as localstack_main

_tcp4_server_endpoint = endpoints.TCP4ServerEndpoint
_hosts_by_port = {listen.port: listen.host for listen in config.GATEWAY_LISTEN}


def _listening_on_the_configured_host(reactor, port, backlog=50, interface=""):
    return _tcp4_server_endpoint(reactor, port, backlog, interface or _hosts_by_port.get(port, ""))


class _DropWritesToClosedPipe:
    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ConnectionResetError):
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--s3-storage-dir", required=True)
    args = parser.parse_args()

    sys.stdout = _DropWritesToClosedPipe(sys.stdout)
    sys.stderr = _DropWritesToClosedPipe(sys.stderr)
    endpoints.TCP4ServerEndpoint = _listening_on_the_configured_host
    # Read by S3Provider.__init__ when the S3 service is first loaded.
    s3_provider.DEFAULT_S3_TMP_DIR = args.s3_storage_dir
    try:
        localstack_main.main()
        code = 0
    except SystemExit as exit_request:
        code = exit_request.code if isinstance(exit_request.code, int) else int(exit_request.code is not None)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
