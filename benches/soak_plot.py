#!/usr/bin/env python3
"""Draw a coplan-bench soak CSV (--soak-csv) as a small PNG: server RSS, p99 and req/s over time,
and the watched files' sizes (the SQLite WAL) or PostgreSQL connections when present.

    python3 -m venv /tmp/plot && /tmp/plot/bin/pip install matplotlib
    /tmp/plot/bin/python benches/soak_plot.py soak.csv soak.png "SQLite, 30 min"
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def column(rows, name):
    return [float(r[name]) if r.get(name) not in (None, "") else None for r in rows]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else source
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    minutes = [float(r["t_s"]) / 60 for r in rows]
    extra = [n for n in rows[0].keys() if n.startswith("file") or n == "pg_connections"]
    extra = [n for n in extra if any(r[n] for r in rows)]
    panels = [("rss_mib", "server RSS (MiB)"), ("p99_ms", "p99 (ms)"), ("rps", "req/s")]
    panels += [(n, n.replace("_", " ")) for n in extra]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 1.6 * len(panels)), sharex=True)
    for ax, (name, label) in zip(axes, panels):
        ax.plot(minutes, column(rows, name), linewidth=1)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("minutes", fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=90)


if __name__ == "__main__":
    main()
