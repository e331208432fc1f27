"""Performance benchmarks: ``python -m benchmarks.perf <name> [options]``.

Each benchmark is a module here with ``main(argv) -> dict``; the dict is printed last as one JSON
line, so that scripts can read the measurement with ``tail -n 1``.
"""

BENCHMARKS = {
    "he_kmeans": "benchmarks.perf.he_kmeans",
    "he_logreg": "benchmarks.perf.he_logreg",
    "he_pipeline": "benchmarks.perf.he_pipeline",
    "federated": "benchmarks.perf.federated",
    "dp": "benchmarks.perf.dp",
    "synthetic": "benchmarks.perf.synthetic",
    "console": "benchmarks.perf.console",
}
