"""Start-up: `import mmenc; mmenc.list_encoders()` and `mmenc --help`, as fresh processes."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import mmenc; mmenc.list_encoders()'": [
        sys.executable,
        "-c",
        "import mmenc; mmenc.list_encoders()",
    ],
    "mmenc --help": [sys.executable, "-m", "mmenc.cli", "--help"],
}


def run(repeats: int = 5) -> list[tuple[str, float]]:
    results = []
    for label, command in COMMANDS.items():
        subprocess.run(command, check=True, capture_output=True)  # warm the file cache
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        results.append((label, statistics.median(times)))
    return results
