#!/usr/bin/env bash
# Soak test of the live pipeline (issue 20.4): plays a video through `posescope bench --input`
# (looped, delivered at its frame rate, frames dropped while busy, exactly the live path) for
# MINUTES minutes and samples the process's resident memory every few seconds.
#
#   scripts/soak.sh [VIDEO] [MINUTES] [OUT_DIR]     (defaults: the street clip, 30, soak-out)
#
# Writes OUT_DIR/rss.csv (seconds, RSS in MiB), OUT_DIR/bench.json (the run's statistics) and
# prints the verdict: the RSS after warm-up (the first 10% of the run, at least 60 s) must stay
# within 5% (and 20 MiB) of its first post-warm-up value. Plot: scripts/soak_plot.py OUT_DIR.
# Extra arguments for posescope go in POSESCOPE_SOAK_ARGS (e.g. "--workers 1 --threads 1").
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
video="${1:-$here/../shared/data/videos/street_crowd.mp4}"
minutes="${2:-30}"
out="${3:-soak-out}"
bin="${POSESCOPE_BIN:-$here/target/release/posescope}"
interval="${SOAK_INTERVAL:-5}"
[ -x "$bin" ] || { echo "no release binary at $bin (cargo build --release)" >&2; exit 1; }
[ -f "$video" ] || { echo "no video at $video" >&2; exit 1; }
mkdir -p "$out"
seconds=$((minutes * 60))
# shellcheck disable=SC2086
"$bin" bench --input "$video" --seconds "$seconds" --json ${POSESCOPE_SOAK_ARGS:-} \
    >"$out/bench.json" 2>"$out/bench.log" &
pid=$!
echo "seconds,rss_mib" >"$out/rss.csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')" >>"$out/rss.csv"
    sleep "$interval"
done
wait "$pid" || { echo "posescope bench failed: $(tail -3 "$out/bench.log")" >&2; exit 1; }
python3 - "$out" "$seconds" <<'PY'
import csv, json, sys
out, total = sys.argv[1], float(sys.argv[2])
rows = [(float(r["seconds"]), float(r["rss_mib"])) for r in csv.DictReader(open(f"{out}/rss.csv"))]
warm = max(60.0, 0.1 * total)
after = [m for s, m in rows if s >= warm]
if len(after) < 2:
    sys.exit(f"too few samples after the {warm:.0f} s warm-up ({len(rows)} in all)")
first, last, peak = after[0], after[-1], max(after)
bench = json.load(open(f"{out}/bench.json"))
print(f"{len(rows)} samples over {rows[-1][0]:.0f} s; processed {bench['processed']} frames at {bench['fps']:.1f} fps")
print(f"RSS after warm-up ({warm:.0f} s): first {first:.1f} MiB, last {last:.1f} MiB, peak {peak:.1f} MiB, min {min(after):.1f} MiB")
limit = max(0.05 * first, 20.0)
growth = last - first
if peak - first > limit:
    sys.exit(f"FAIL: resident memory grew by {peak - first:.1f} MiB after warm-up (limit {limit:.1f})")
print(f"PASS: flat after warm-up (growth {growth:+.1f} MiB, limit {limit:.1f})")
PY
