#!/usr/bin/env bash
# Builds posescope with CUDA (`--features cuda`) on a machine that has neither a GPU nor a CUDA
# toolkit: the CUDA 13.0 compiler, headers and libraries come from PyPI wheels installed into a
# local virtual environment. Prints the binary's path as its last line.
#
#   scripts/build-cuda.sh [extra cargo arguments, e.g. --no-default-features --features cli]
#
# What it pins and why:
# - CUDA 13.0 wheels (nvcc 13.0.88; `nvidia-cuda-nvcc` of CUDA 13 carries the `nvcc` driver,
#   the CUDA 12 `-cu12` wheel only `ptxas`). candle 0.11.1 pins cudarc 0.19.10, whose build
#   script reads the version from `nvcc --version` (`cuda-version-from-build-system`) and knows
#   CUDA 11.4 … 13.4; 13.5, PyPI's newest, is refused. 13.0 is the oldest CUDA 13, so the
#   binary asks the least of the driver (CUDA 13 needs driver 580 or newer).
# - CUDA_COMPUTE_CAP=80 unless set: candle's kernels are compiled to PTX for compute_80 and the
#   driver JIT-compiles them for the GPU at hand, so one build runs on every GPU from Ampere on
#   (A100, RTX 30/40, L4/L40, H100/H200, Blackwell). CUDA 13 itself supports nothing older than
#   Turing (75); for a T4 or an RTX 20 set CUDA_COMPUTE_CAP=75 (bf16 kernels then drop out).
#   Without a GPU there is no nvidia-smi to ask, hence the default.
#
# Environment: POSESCOPE_CUDA_VENV (default .cuda-venv in the repository, git-ignored),
# CARGO_TARGET_DIR (default target/), POSESCOPE_CUDA_PROFILE (default release; `dev` shares the
# dependencies of a debug build), CUDA_COMPUTE_CAP, PYTHON (default python3).
# With a system CUDA toolkit (`nvcc` on PATH or CUDA_HOME set) and POSESCOPE_CUDA_SYSTEM=1 it
# builds against that instead of the wheels.
#
# At run time the CUDA build needs the NVIDIA driver (libcuda.so.1) and CUDA 13's cuBLAS,
# cuRAND, NVRTC and runtime libraries: candle 0.11 turns on cudarc's `dynamic-linking`, so they
# are linked, not loaded on demand, and without the driver library the binary does not start at
# all. The binary built here finds the CUDA libraries in the venv (its RUNPATH points there);
# only the driver must come from the system.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

venv="${POSESCOPE_CUDA_VENV:-$repo/.cuda-venv}"
profile="${POSESCOPE_CUDA_PROFILE:-release}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
# candle-kernels' build (cudaforge) compiles its .cu files on half the CPUs by default (one
# on a 2-CPU machine); all of them halve its time.
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
python="${PYTHON:-python3}"

wheels=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
  nvidia-nvvm==13.0.88          # cicc and libdevice (nvcc's device front end)
  nvidia-cuda-crt==13.0.88      # crt/ headers (host_defines.h, mma.h …)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda_fp16.h, cuda_bf16.h, cuda.h, libcudart
  nvidia-cuda-cccl==13.0.85     # CCCL (nv/target, cuda/std) that CUDA 13's fp16/bf16 headers include
  nvidia-cublas==13.0.2.14      # libcublas, libcublasLt (linked by cudarc)
  nvidia-curand==10.4.0.35      # libcurand (linked by cudarc)
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc (linked by cudarc)
)

step() { printf '[build-cuda] %s\n' "$*" >&2; }

if [ "${POSESCOPE_CUDA_SYSTEM:-0}" = 1 ]; then
  nvcc_path="$(command -v nvcc || true)"
  [ -n "$nvcc_path" ] || nvcc_path="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
  [ -x "$nvcc_path" ] || { echo "build-cuda: POSESCOPE_CUDA_SYSTEM=1 but no nvcc on PATH or in \$CUDA_HOME/bin" >&2; exit 1; }
  cuda_home="${CUDA_HOME:-$(cd "$(dirname "$nvcc_path")/.." && pwd)}"
  rpath=""
else
  # 1. The wheels, installed once (a stamp records the pins, so CI and reruns skip pip).
  stamp="$venv/.posescope-wheels"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${wheels[*]}" ]; then
    start=$(date +%s)
    [ -x "$venv/bin/pip" ] || "$python" -m venv "$venv"
    step "pip: installing ${#wheels[@]} CUDA 13.0 wheels into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${wheels[@]}"
    printf '%s' "${wheels[*]}" >"$stamp"
    step "pip: $(($(date +%s) - start)) s"
  fi
  cu13="$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13 | head -n 1)"
  [ -x "$cu13/bin/nvcc" ] || { echo "build-cuda: no nvcc in $cu13/bin after pip install" >&2; exit 1; }

  # 2. A CUDA_HOME laid out as a toolkit: bin/, include/, nvvm/ from the wheels; lib/ with the
  #    link names (libcublas.so → libcublas.so.13 …) that the wheels leave out; lib/stubs/ with
  #    a link-only libcuda.so (see below).
  cuda_home="$venv/cuda-home"
  mkdir -p "$cuda_home/lib/stubs"
  for d in bin include nvvm; do ln -sfn "$cu13/$d" "$cuda_home/$d"; done
  for lib in cublas cublasLt curand nvrtc cudart; do
    real="$(ls "$cu13"/lib/lib"$lib".so.[0-9]* | head -n 1)"
    ln -sfn "$real" "$cuda_home/lib/lib$lib.so"
  done
  # The driver library is not on PyPI (it comes with the NVIDIA driver). The linker needs a
  # libcuda.so to resolve cudarc's cu* calls against, like the toolkit's own
  # lib64/stubs/libcuda.so: every function returns CUDA_ERROR_STUB_LIBRARY (34), and its
  # soname is libcuda.so.1, so the binary asks the system for the real driver at run time.
  # It is named libcuda.so only and sits outside the RUNPATH: it is never loaded.
  stub="$cuda_home/lib/stubs/libcuda.so"
  if [ ! -f "$stub" ]; then
    cudarc_src="$(cargo metadata --format-version 1 --features cuda 2>/dev/null \
      | "$python" -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')"
    {
      # cudarc's declarations (what the binary references) and cuda.h's, legacy names included.
      grep -ohE '^ +fn cu[A-Za-z0-9_]+\(' "$cudarc_src/src/driver/sys/mod.rs" | sed -E 's/^ +fn //; s/\($//'
      for def in "" -D__CUDA_API_VERSION_INTERNAL; do
        gcc -E -P $def -I"$cu13/include" -x c "$cu13/include/cuda.h" | tr -s ' \n' ' ' \
          | grep -oE 'CUresult +cu[A-Za-z0-9_]+ *\(' | sed -E 's/CUresult +//; s/ *\($//'
      done
    } | sort -u | awk '{ printf "int %s(void) { return 34; /* CUDA_ERROR_STUB_LIBRARY */ }\n", $1 }' \
      >"$cuda_home/lib/stubs/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$cuda_home/lib/stubs/libcuda_stub.c"
  fi
  nvcc_path="$cuda_home/bin/nvcc"
  rpath="$cu13/lib"  # the versioned libraries (libcublas.so.13 …) the binary asks for
fi

# 3. The build. cudarc reads the CUDA version from `nvcc --version` (PATH) and adds
#    $CUDA_HOME/lib and lib/stubs to the link search; candle-kernels finds nvcc through NVCC.
export CUDA_HOME="$cuda_home" NVCC="$nvcc_path" PATH="$(dirname "$nvcc_path"):$PATH"
step "nvcc: $("$nvcc_path" --version | tail -n 2 | head -n 1); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP; profile $profile"
start=$(date +%s)
link_args=()
# The binary's RUNPATH names the venv's CUDA libraries (cargo rustc passes it to the binary
# only, so every dependency keeps the fingerprint of a plain `cargo build`).
[ -n "$rpath" ] && link_args=(-- -C "link-arg=-Wl,-rpath,$rpath")
cargo rustc --profile "$profile" --features cuda --bin posescope "$@" "${link_args[@]}" >&2
step "cargo: $(($(date +%s) - start)) s"

case "$profile" in
  dev) out_dir=debug ;;
  *) out_dir="$profile" ;;
esac
bin="$target_dir/$out_dir/posescope"
[ -x "$bin" ] || { echo "build-cuda: no binary at $bin" >&2; exit 1; }
echo "$bin"
