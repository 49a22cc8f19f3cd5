#!/usr/bin/env python3
"""Writes the small torch.save fixtures under tests/data/pth/ (used by tests/pth_formats.rs).

A developer tool, not run by the tests: the outputs are committed. Needs `torch` (any
recent CPU build from PyPI):

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch
    /tmp/torchvenv/bin/python scripts/make_pth_stem_fixtures.py

Outputs:
* `stems/<stem>.pth` for stem lengths 1..64: zip-format checkpoints of a tiny state dict.
  torch names the archive's inner folder after the file's stem, so these cover every
  folder-name length up to 64. The 21-character one (`unipose_lsp_torchinit`) makes the
  first central-directory entry (`<stem>/data.pkl`, no extra field) exactly 76 bytes, the
  size of the ZIP64 end record plus its locator: see docs/upstream-zip-crate.md.
* `legacy_wrapped.pth`: the legacy (PyTorch < 1.6) format, `{'meta': ..., 'state_dict':
  ...}` with DataParallel's `module.` prefixes, float32/float16/bfloat16/float64
  tensors, a transposed (non-contiguous) view and an offset view sharing one storage with
  a third tensor, and an int64 `num_batches_tracked`.
* `zip_wrapped.pth`: the same object in the zip format.
* `expected.json`: every float tensor's shape and values (as float32, widened to double,
  so the JSON numbers are exact) and the skipped entries, per file.
"""

import collections
import json
import os
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "pth")

# 64 characters; its first 21 are the stem that triggered the zip crate bug.
STEM_CHARS = "unipose_lsp_torchinit_abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
assert len(STEM_CHARS) == 64 and STEM_CHARS[:21] == "unipose_lsp_torchinit"


def stem_state_dict(n):
    """conv weight [2,1,3,3], bias [2] (values depend on n) and num_batches_tracked."""
    sd = collections.OrderedDict()
    sd["conv.weight"] = (torch.arange(18, dtype=torch.float32) * 0.25 - 2.0 + n).reshape(2, 1, 3, 3)
    sd["conv.bias"] = torch.tensor([0.5, -1.5], dtype=torch.float32) * n
    sd["bn.num_batches_tracked"] = torch.tensor(n, dtype=torch.int64)
    return sd


def wrapped_checkpoint():
    """An MMPose-style checkpoint exercising views, shared storage and dtypes."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1.0
    sd = collections.OrderedDict()
    sd["module.lin.weight"] = base  # [3, 4], contiguous
    sd["module.lin.weight_t"] = base.t()  # [4, 3], stride (1, 4): same storage
    sd["module.lin.row1"] = base[1, 1:]  # [3], storage offset 5: same storage
    sd["module.conv.weight"] = torch.linspace(-1, 1, 18, dtype=torch.float32).reshape(2, 1, 3, 3)
    sd["module.half.weight"] = torch.tensor([1.5, -2.0, 0.25, 65504.0], dtype=torch.float16)
    sd["module.bf16.weight"] = torch.tensor([3.0, -0.5, 1e-3], dtype=torch.bfloat16)
    sd["module.bn.running_mean"] = torch.tensor([0.1, 1000.0, -1e-7], dtype=torch.float64)
    sd["module.bn.num_batches_tracked"] = torch.tensor(300, dtype=torch.int64)
    sd._metadata = collections.OrderedDict({"": {"version": 1}, "bn": {"version": 2}})
    meta = {
        "epoch": 300,
        "iter": 19200,
        "mmcv_version": "1.7.0",
        "seed": None,
        "hook_msgs": {"best_score": 0.625, "last_ckpt": "work_dirs/epoch_300.pth"},
        "time": "Sat Dec  6 10:28:00 2026",
    }
    return {"meta": meta, "state_dict": sd}


def describe(sd):
    tensors = {}
    skipped = []
    for name, t in sd.items():
        if t.is_floating_point():
            tensors[name] = {
                "shape": list(t.shape),
                "values": [float(v) for v in t.to(torch.float32).flatten().tolist()],
            }
        else:
            skipped.append(name)
    return {"tensors": tensors, "skipped": skipped}


def main():
    os.makedirs(os.path.join(ROOT, "stems"), exist_ok=True)
    expected = {"torch_version": torch.__version__, "stems": {}}
    for n in range(1, 65):
        stem = STEM_CHARS[:n]
        sd = stem_state_dict(n)
        torch.save(sd, os.path.join(ROOT, "stems", stem + ".pth"))
        expected["stems"][stem + ".pth"] = describe(sd)

    ckpt = wrapped_checkpoint()
    torch.save(ckpt, os.path.join(ROOT, "legacy_wrapped.pth"), _use_new_zipfile_serialization=False)
    torch.save(ckpt, os.path.join(ROOT, "zip_wrapped.pth"))
    expected["legacy_wrapped.pth"] = describe(ckpt["state_dict"])
    expected["zip_wrapped.pth"] = describe(ckpt["state_dict"])

    # Check what was written reads back as saved.
    for name in ["legacy_wrapped.pth", "zip_wrapped.pth"]:
        back = torch.load(os.path.join(ROOT, name), weights_only=True)
        for k, v in ckpt["state_dict"].items():
            assert torch.equal(back["state_dict"][k], v), (name, k)
        assert back["meta"] == ckpt["meta"]
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = 0
    for dirpath, _, files in os.walk(ROOT):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(f"wrote {ROOT} ({total} bytes) with torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
