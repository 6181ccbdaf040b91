"""``python -m workers [--processes N] [--one]``: run scan workers against REDIS_URL (or the
embedded Redis of the data directory, which must already be served by ``hashsvc serve``)."""

from __future__ import annotations

import argparse
import logging

from hashsvc.config import load_settings
from hashsvc.embedded import redis_for
from workers.supervisor import run_many, run_one


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--one", action="store_true", help="run one worker in this process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    with redis_for(settings.redis_url, settings.data_dir, settings.appendfsync) as url:
        if args.one:
            run_one(settings, url)
        else:
            run_many(max(1, args.processes), url)


main()
