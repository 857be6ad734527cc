"""``sagemaker-emulator serve``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from sagemaker_emulator.config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sagemaker-emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve S3, SageMaker and friends on one address")
    serve.add_argument("--host", default=os.environ.get("EMULATOR_HOST", "127.0.0.1"),
                       help="bind address (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "4566")))
    serve.add_argument("--time-scale", type=float,
                       default=float(os.environ.get("SAGEMAKER_EMULATOR_TIME_SCALE", "1")),
                       help="divide AWS's waits (invocation timeout, stop grace, ...) by this factor")
    serve.add_argument("--workdir", type=Path, default=None,
                       help="model archives and the async-inference queue; kept at shutdown "
                            "(default: a temporary folder, removed at shutdown)")
    serve.add_argument("--log-level", default=os.environ.get("EMULATOR_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    options = {"host": args.host, "port": args.port, "time_scale": args.time_scale}
    if args.workdir:
        options.update(workdir=args.workdir, keep_workdir=True)
    settings = Settings(**options)

    import uvloop
    from aiohttp import web

    from sagemaker_emulator.server import create_app

    print(f"SageMaker emulator listening on http://{settings.host}:{settings.port} "
          f"(time scale {settings.time_scale:g})", flush=True)
    # uvloop: its transports and timers in C take a good part of every invocation's cost off the router.
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
