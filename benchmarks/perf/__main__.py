import importlib
import json
import sys

from benchmarks.perf import BENCHMARKS
from methods._util import jsonable


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        known = ", ".join(sorted(BENCHMARKS))
        print(f"usage: python -m benchmarks.perf <{known}> [options]   (<name> --help for options)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    result = importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])
    print(json.dumps(jsonable(result), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
