#!/usr/bin/env python3
"""The original PoseEstimationForMobile pipeline (mobile CPM / mobile hourglass), as a results file.

Developer tool for issue 20: reproduces what edvardHua/PoseEstimationForMobile's own code does
with its released `model.tflite`, so `posescope eval --score` can score the original program's
predictions on the same annotations as posescope's own:

- `cv2.imread` (BGR uint8), `cv2.resize(img, (192, 192))` (INTER_LINEAR, the whole image squashed,
  no aspect kept), float32 0..255 in B,G,R order (training/src/benchmark.py `infer()`);
- the TFLite interpreter runs the released model; its one output is the CPM's last stage
  upsampled to 96×96 (`stage_5_out`) or the hourglass's last output, 48×48 (`hourglass_out_3`);
- each joint is the argmax of its map, mapped to the image as `x = ix·W/96`, `y = iy·H/96`
  (`/48` for the hourglass; benchmark.py's `np.unravel_index(np.argmax(...))` scaled by the image
  size over the map size).

Single-person: on LSP-style files (one person per image) the whole image is the input, as the
original does. On COCO files (`--person box`) each annotated person is cut out first with the box
posescope's `eval --person box` uses (the annotated joints' box at the model's aspect, enlarged
1.25×; outside the image black), then squashed to 192×192 as above — the original has no person
crop, so this is the nearest like-for-like.

Writes a COCO keypoint results list in the dataset's joint order (joints the model has no
channel for are 0, 0, 0): `posescope eval --annotations A --images I --score OUT` scores it.

  python pefm_tflite.py --model ../shared/models/pefm_cpm.tflite \
      --annotations ../shared/data/lspet_dev/annotations.json \
      --images ../shared/data/lspet_dev --out /tmp/pefm_cpm_original.json

Needs: tensorflow (tf.lite.Interpreter) or ai-edge-litert, opencv-python-headless, numpy.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

# The PEFM models' output channels (NOT AI Challenger's native order).
PEFM = ["head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
        "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle"]
# LSP annotation order (lspet_dev/annotations.json "joint_names") in PEFM names.
LSP = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
       "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top"]
COCO17 = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
          "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
          "r_ankle"]
BOX_PADDING = 1.25


def interpreter(path):
    try:
        from tensorflow import lite
        it = lite.Interpreter(model_path=path)
    except ImportError:
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=path)
    it.allocate_tensors()
    return it


def infer(it, bgr):
    """The output map [h, w, 14] of one BGR uint8 image (any size)."""
    inp = it.get_input_details()[0]
    h, w = inp["shape"][1], inp["shape"][2]
    x = cv2.resize(bgr, (w, h)).astype(np.float32)[None]
    it.set_tensor(inp["index"], x)
    it.invoke()
    outs = it.get_output_details()
    if len(outs) != 1:
        sys.exit(f"expected one output (the released PEFM models have one), found {len(outs)}")
    return it.get_tensor(outs[0]["index"])[0]


def argmax_joints(heat, width, height):
    """benchmark.py's decoding: per channel the argmax cell, scaled by image/map size."""
    mh, mw, n = heat.shape
    out = []
    for c in range(n):
        iy, ix = np.unravel_index(np.argmax(heat[:, :, c]), (mh, mw))
        out.append((ix * width / mw, iy * height / mh, float(heat[iy, ix, c])))
    return out


def person_box(points, aspect, padding):
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = max(x1 - x0, 8.0), max(y1 - y0, 8.0)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * padding, h * padding
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def crop(bgr, box):
    """The box's pixels (outside the image black), at integer pixel bounds."""
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    H, W = bgr.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = bgr[sy0:sy1, sx0:sx1]
    return out, (x0, y0)


def result(image_id, joints_by_name, order):
    flat = []
    scores = []
    for name in order:
        j = joints_by_name.get(name)
        if j is None:
            flat += [0.0, 0.0, 0.0]
        else:
            # Rounded to 1/100 pixel (the file stays small; PCK and OKS do not notice); a
            # found joint never reads as the "not predicted" triple 0, 0, 0.
            flat += [round(float(j[0]), 2), round(float(j[1]), 2), max(round(float(j[2]), 3), 1e-3)]
            scores.append(j[2])
    return {"image_id": image_id, "category_id": 1, "keypoints": flat,
            "score": round(float(np.mean(scores)), 4) if scores else 0.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--person", choices=["whole", "box"], default="whole")
    ap.add_argument("--limit", type=int)
    a = ap.parse_args()

    it = interpreter(a.model)
    with open(a.annotations) as f:
        ann = json.load(f)
    results = []
    if "annotations" in ann:  # COCO
        if a.person != "box":
            sys.exit("COCO files hold several people per image: use --person box")
        by_image = {}
        for p in ann["annotations"]:
            by_image.setdefault(p["image_id"], []).append(p)
        images = ann["images"][: a.limit]
        for img in images:
            path = os.path.join(a.images, img["file_name"])
            bgr = cv2.imread(path)
            if bgr is None:
                sys.exit(f"cannot read {path}")
            for p in by_image.get(img["id"], []):
                k = p["keypoints"]
                pts = [(k[3 * i], k[3 * i + 1]) for i in range(len(k) // 3) if k[3 * i + 2] > 0]
                if len(pts) < 2 or p.get("iscrowd", 0):
                    continue
                box = person_box(pts, 1.0, BOX_PADDING)
                cut, (ox, oy) = crop(bgr, box)
                heat = infer(it, cut)
                js = argmax_joints(heat, cut.shape[1], cut.shape[0])
                named = {n: (x + ox, y + oy, s) for n, (x, y, s) in zip(PEFM, js)}
                results.append(result(img["id"], named, COCO17))
    else:  # LSP-style: one person per image, the whole image
        images = ann["images"][: a.limit]
        for i, img in enumerate(images):
            path = os.path.join(a.images, img["file_name"])
            bgr = cv2.imread(path)
            if bgr is None:
                sys.exit(f"cannot read {path}")
            heat = infer(it, bgr)
            js = argmax_joints(heat, bgr.shape[1], bgr.shape[0])
            named = dict(zip(PEFM, js))
            results.append(result(i, named, LSP))
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in results) + "\n]\n")
    os.replace(tmp, a.out)
    print(f"{len(results)} results from {len(images)} images -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
