#!/usr/bin/env bash
# Prints the V4L2 struct sizes, field offsets and ioctl request numbers from the C header, to
# check the values written out in src/source/camera/v4l2.rs (its tests hold the same numbers).
# Needs gcc and linux-libc-dev (Debian: `apt-get install gcc linux-libc-dev`).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/abi.c" <<'C'
#include <stdio.h>
#include <stddef.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#define SIZE(t) printf("sizeof %-26s %zu\n", #t, sizeof(struct t))
#define REQ(r) printf("%-28s %#lx\n", #r, (unsigned long)(r))
#define OFF(t, f) printf("offsetof %s.%-16s %zu\n", #t, #f, offsetof(struct t, f))
int main(void) {
  SIZE(v4l2_capability); SIZE(v4l2_fmtdesc); SIZE(v4l2_frmsizeenum); SIZE(v4l2_frmivalenum);
  SIZE(v4l2_format); SIZE(v4l2_requestbuffers); SIZE(v4l2_buffer); SIZE(v4l2_streamparm);
  REQ(VIDIOC_QUERYCAP); REQ(VIDIOC_ENUM_FMT); REQ(VIDIOC_S_FMT); REQ(VIDIOC_REQBUFS);
  REQ(VIDIOC_QUERYBUF); REQ(VIDIOC_QBUF); REQ(VIDIOC_DQBUF); REQ(VIDIOC_STREAMON);
  REQ(VIDIOC_STREAMOFF); REQ(VIDIOC_G_PARM); REQ(VIDIOC_S_PARM); REQ(VIDIOC_ENUM_FRAMESIZES);
  REQ(VIDIOC_ENUM_FRAMEINTERVALS);
  OFF(v4l2_buffer, timestamp); OFF(v4l2_buffer, sequence); OFF(v4l2_buffer, memory);
  OFF(v4l2_buffer, m); OFF(v4l2_buffer, length); OFF(v4l2_format, fmt);
  OFF(v4l2_frmsizeenum, discrete); OFF(v4l2_frmivalenum, discrete);
  OFF(v4l2_fmtdesc, pixelformat); OFF(v4l2_capability, device_caps);
  return 0;
}
C
gcc "$tmp/abi.c" -o "$tmp/abi"
"$tmp/abi"
