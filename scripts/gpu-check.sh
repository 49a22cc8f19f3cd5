#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds posescope with CUDA, runs every network family on
# the GPU against the CPU (tests/device_parity.rs), and benchmarks HigherHRNet-W32 at 512×512
# and CPM at 368×368 on the GPU (frames per second, fp32), then the CLI's own `bench` of the
# embedded model with its host↔device copies per frame. Fails clearly when no GPU is present.
#
#   scripts/gpu-check.sh            (output: the parity table, the timings; log in gpu-check-out/)
#
# The CUDA toolkit: a system one (nvcc on PATH or in $CUDA_HOME/bin) if present, else
# scripts/build-cuda.sh's PyPI wheels (needs PyPI). CUDA_COMPUTE_CAP is read from nvidia-smi.
# Environment: CARGO_TARGET_DIR, GPU_CHECK_OUT (default gpu-check-out), POSESCOPE_TEST_DEVICE
# (default cuda).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${GPU_CHECK_OUT:-$repo/gpu-check-out}"
mkdir -p "$out"
device="${POSESCOPE_TEST_DEVICE:-cuda}"
export POSESCOPE_TEST_DEVICE="$device"

fail() { echo "gpu-check: $*" >&2; exit 1; }

# 1. A GPU, its compute capability and driver.
command -v nvidia-smi >/dev/null || fail "no NVIDIA GPU here: nvidia-smi is not installed (no driver)"
gpus="$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1)" \
  || fail "no NVIDIA GPU here: nvidia-smi says: $gpus"
[ -n "$gpus" ] || fail "no NVIDIA GPU here: nvidia-smi lists none"
echo "GPU: $gpus" | tee "$out/gpu.txt"
cap="$(echo "$gpus" | head -n 1 | cut -d, -f2 | tr -d ' .')"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"

# 2. The toolkit: the system's, else the wheels (scripts/build-cuda.sh sets the same up).
if command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  export POSESCOPE_CUDA_SYSTEM=1
  nvcc_path="$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")"
  export CUDA_HOME="${CUDA_HOME:-$(cd "$(dirname "$nvcc_path")/.." && pwd)}"
  export PATH="$CUDA_HOME/bin:$PATH" NVCC="$nvcc_path"
  export LD_LIBRARY_PATH="$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}"
  echo "toolkit: system, $("$nvcc_path" --version | tail -n 2 | head -n 1)"
fi
bin="$(scripts/build-cuda.sh | tail -n 1)"
echo "binary: $bin"
if [ "${POSESCOPE_CUDA_SYSTEM:-0}" != 1 ]; then
  venv="${POSESCOPE_CUDA_VENV:-$repo/.cuda-venv}"
  export CUDA_HOME="$venv/cuda-home" PATH="$venv/cuda-home/bin:$PATH" NVCC="$venv/cuda-home/bin/nvcc"
  export LD_LIBRARY_PATH="$venv/cuda-home/lib:${LD_LIBRARY_PATH:-}"
fi

# 3. Parity on the GPU against the CPU, then the frames-per-second benchmark (same binary).
echo "== parity: every network family on $device against the CPU"
cargo test --release --features cuda --test device_parity -- --include-ignored \
  --test-threads=1 --nocapture 2>&1 | tee "$out/device_parity.log"
grep -q "test result: ok" "$out/device_parity.log" || fail "the device parity test failed (see $out/device_parity.log)"

# 4. The CLI on the GPU: the embedded model's forward and its copies per frame, and the live
#    pipeline on the bundled-free path (a generated clip) when ffmpeg is there.
echo "== posescope bench on $device"
"$bin" bench --device "$device" --model openpose-mobilenet-thin --size 432x368 --runs 20 --json \
  | tee "$out/bench_tfpose.json"
"$bin" bench --device "$device" --model openpose-mobilenet-thin --size 432x368 --runs 20
if command -v ffmpeg >/dev/null; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t 4 "$out/clip.mp4"
  "$bin" bench --device "$device" --input "$out/clip.mp4" --seconds 4 --json | tee "$out/bench_live.json"
fi
echo "gpu-check: done; logs in $out"
