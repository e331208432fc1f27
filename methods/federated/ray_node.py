"""A Ray node owned by one process and shared by its federated jobs (``python -m
methods.federated.ray_node``).

Flower's simulation engine shuts Ray down at the end of every run, which in a driver that started
Ray stops the whole node: the next job would pay Ray's start-up again. Started here instead, in a
small child process, the node outlives each job's driver (a job connects, and its ``ray.shutdown()``
only disconnects). The node stops when this process's parent closes its stdin or dies: the child
dies with its parent (:func:`methods.lifeline.die_with_parent`) and the parent's
:class:`~methods.lifeline.Watchdog` kills every process tagged with the node's tag.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m methods.federated.ray_node")
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--num-cpus", type=int, required=True)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    from methods.lifeline import die_with_parent

    die_with_parent(args.parent)
    import ray

    ray.init(num_cpus=args.num_cpus, num_gpus=0, include_dashboard=False,
             object_store_memory=256 * 1024**2, log_to_driver=args.verbose,
             logging_level=logging.INFO if args.verbose else logging.ERROR)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.buffer.read()  # until the parent closes the pipe (or dies)
    ray.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
