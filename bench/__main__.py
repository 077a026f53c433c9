"""`make bench`: every SPEC section 11 figure, each benchmark in its own process.

Prints each benchmark's `name=value` lines as they come, then a table of the
contract figures against their targets.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

BENCHMARKS = ("bench.bench_pipeline", "bench.bench_fill_to_chat", "bench.bench_ws_memory",
              "bench.bench_cluster")

# figure: (target, "max" = at most / "min" = at least)
TARGETS: dict[str, tuple[float, str]] = {
    "alert_to_order_ms_p50": (1.0, "max"),
    "alert_to_order_ms_p99": (5.0, "max"),
    "ack_ms_p99": (20.0, "max"),
    "alerts_per_s": (2000.0, "min"),
    "fill_to_chat_ms_p50": (2.0, "max"),
    "kis_rate_utilization": (0.95, "min"),
    "rss_mb_1000_users": (250.0, "max"),
    # SPEC section 12: three instances on the local PostgreSQL, default lease (10 s).
    "pg_alerts_per_s": (2000.0, "min"),
    "pg_ack_ms_p99": (20.0, "max"),
    "failover_s_p99": (12.0, "max"),
}
# Figures a machine without PostgreSQL cannot measure (the benchmark says so).
NEEDS_POSTGRESQL = frozenset({"pg_alerts_per_s", "pg_ack_ms_p99", "failover_s_p99"})
# Figures without a SPEC target, listed after the table.
MEASURED_ONLY = ("fanout10_ms_p50", "fanout10_ms_p99")


def _run(module: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", module], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        name, sep, value = line.strip().partition("=")
        if sep and name.replace("_", "").isalnum():
            try:
                figures[name] = float(value)
            except ValueError:
                continue
    code = proc.wait()
    print(f"# {module}: exit {code} in {time.monotonic() - started:.1f} s", flush=True)
    return figures


def main() -> int:
    print(f"# machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}", flush=True)
    figures: dict[str, float] = {}
    for module in BENCHMARKS:
        figures.update(_run(module))
    print()
    print(f"{'figure':<24} {'value':>10} {'target':>10}  status")
    missing = 0
    for name, (target, kind) in TARGETS.items():
        if name not in figures and name in NEEDS_POSTGRESQL and "pg_skipped" in figures:
            print(f"{name:<24} {'-':>10} {target:>10g}  skipped (no PostgreSQL)")
            continue
        if name not in figures:
            print(f"{name:<24} {'-':>10} {target:>10g}  MISSING")
            missing += 1
            continue
        value = figures[name]
        ok = value <= target if kind == "max" else value >= target
        bound = f"{'<=' if kind == 'max' else '>='}{target:g}"
        print(f"{name:<24} {value:>10.3f} {bound:>10}  {'met' if ok else 'NOT MET'}")
    for name in MEASURED_ONLY:
        shown = f"{figures[name]:>10.3f}" if name in figures else f"{'-':>10}"
        print(f"{name:<24} {shown} {'-':>10}  measured")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
