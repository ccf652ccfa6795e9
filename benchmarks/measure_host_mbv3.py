"""Benchmark: time `latency_models.measure --target host` over the whole mbv3 space at 224 fp32
(every distinct block) and print the ratio to the 30-minute budget of issue #3.

    python benchmarks/measure_host_mbv3.py [--space mbv3] [--resolution 224] [--precision fp32]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from latency_models.tables.latency_table import LatencyTable

BUDGET_S = 30 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="mbv3")
    parser.add_argument("--resolution", default="224")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "table.jsonl"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "latency_models.measure",
                "--target",
                "host",
                "--space",
                args.space,
                "--resolution",
                args.resolution,
                "--precision",
                args.precision,
                "--out",
                str(out),
            ],
            check=True,
        )
        elapsed = time.perf_counter() - start
        table = LatencyTable.load(out)
    print(
        f"{args.space} @ {args.resolution} {args.precision}: {len(table)} blocks measured in {elapsed:.1f} s "
        f"({elapsed / len(table):.2f} s/block); budget {BUDGET_S} s; elapsed/budget = {elapsed / BUDGET_S:.3f}"
    )


if __name__ == "__main__":
    main()
