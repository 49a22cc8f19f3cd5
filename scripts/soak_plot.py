#!/usr/bin/env python3
"""Plots OUT_DIR/rss.csv from scripts/soak.sh to OUT_DIR/rss.png (needs matplotlib, e.g. in a
throwaway venv: python3 -m venv /tmp/v && /tmp/v/bin/pip install matplotlib)."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "soak-out"
rows = [(float(r["seconds"]) / 60, float(r["rss_mib"])) for r in csv.DictReader(open(f"{out}/rss.csv"))]
fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
ax.plot([r[0] for r in rows], [r[1] for r in rows], lw=1.2)
ax.set_xlabel("minutes")
ax.set_ylabel("resident memory (MiB)")
ax.set_ylim(0, max(r[1] for r in rows) * 1.15)
ax.set_title("posescope live pipeline soak: resident memory")
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(f"{out}/rss.png")
print(f"{out}/rss.png")
