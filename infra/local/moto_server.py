"""Embedded AWS emulator for local development and tests: moto in server mode.

Two changes to moto's behaviour, both about DynamoDB:

1. moto answers requests on parallel threads and its DynamoDB backend takes no lock, so two
   concurrent conditional writes can both pass their condition (a lost update real DynamoDB never
   allows). This launcher wraps moto's own WSGI application and serialises every DynamoDB request,
   consuming the response body inside the lock; other services (SQS long polls above all) still
   run in parallel.
2. moto's `transact_write_items` backs up for rollback by deep-copying every table a transaction
   names, once per action: a transaction costs time in proportion to everything the table holds
   (measured: 54 ms after 50 predictions, 417 ms after 300). Here it snapshots only the items the
   transaction touches (at most 100 by the API's limit) and restores those on failure: the same
   all-or-nothing outcome at a cost independent of the table's size.
"""

import argparse
import copy
import os
import signal
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


_inside = threading.local()


class _TableBackupsAreFree:
    """`copy` as the DynamoDB backend module sees it: inside a transaction a Table is not copied."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table) and getattr(_inside, "transaction", False):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table, op_type, op):
    attributes = op["Item"] if op_type == "Put" else op["Key"]
    hash_value = DynamoType(attributes[table.hash_key_attr])
    range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _read(table, hash_value, range_value):
    if range_value is None:
        return table.items.get(hash_value)
    return table.items.get(hash_value, {}).get(range_value)


def _restore(table, hash_value, range_value, item):
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    if item is None:
        if hash_value in table.items:
            table.items[hash_value].pop(range_value, None)
            if not table.items[hash_value]:
                del table.items[hash_value]
    else:
        table.items[hash_value][range_value] = item


_original_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    snapshots = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            hash_value, range_value = _key_of(table, op_type, op)
        except Exception:  # an action without a usable key changes nothing; moto reports it
            continue
        before = _read(table, hash_value, range_value)
        snapshots.append((table, hash_value, range_value, copy.deepcopy(before)))
    _inside.transaction = True
    try:
        return _original_transact_write_items(self, transact_items)
    except BaseException:
        # Newest first, so a key named twice ends in the state from before the transaction.
        for table, hash_value, range_value, item in reversed(snapshots):
            _restore(table, hash_value, range_value, item)
        raise
    finally:
        _inside.transaction = False


dynamodb_models.copy = _TableBackupsAreFree()
DynamoDBBackend.transact_write_items = transact_write_items


class SerialisedDynamoDB:
    def __init__(self, app, instance):
        self.app = app
        self.instance = instance.encode()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        # Who answers on this port: the starter checks it is its own emulator, not another
        # `npm run dev`'s that took the port first.
        if environ.get("PATH_INFO") == "/_emulator/instance":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [self.instance]
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
    parser.add_argument("--instance", default="")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    exit_with_parent()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialisedDynamoDB(app, args.instance),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
