#!/usr/bin/env python3
"""DEVELOPMENT-TIME ONLY: not part of the product, its build or its tests.

Generates the small COCO keypoint test case under tests/data/eval/ and the numbers the
official evaluator (pycocotools' COCOeval, iouType='keypoints') gives for it, which
tests/eval_coco.rs compares the Rust implementation against.

    python3 -m venv /tmp/cocovenv && /tmp/cocovenv/bin/pip install pycocotools numpy
    /tmp/cocovenv/bin/python scripts/coco_eval_reference.py tests/data/eval

With `--check GT.json RESULTS.json` it instead evaluates a results file written by
`posescope eval --predictions` exactly as pycocotools reads it (plain `loadRes`: joints not
predicted are 0, 0, 0 and count in the detection's area) and prints the ten stats as JSON
(the reference numbers of tests/data/eval/real_*.json).

The case is random but seeded: several images (ids out of order), several people each,
unlabelled and occluded keypoints, a crowd region, an annotation with no keypoints,
small / medium / large people, duplicate and noisy detections, false positives, an image
without detections, an image with more than 20 detections, and tied scores.
"""
import importlib.metadata
import json
import os
import random
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
         "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
         "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
# A standing person in a unit box (x right, y down), one point per COCO keypoint.
TEMPLATE = [(0.50, 0.08), (0.53, 0.06), (0.47, 0.06), (0.57, 0.08), (0.43, 0.08),
            (0.65, 0.22), (0.35, 0.22), (0.72, 0.38), (0.28, 0.38), (0.75, 0.52),
            (0.25, 0.52), (0.60, 0.55), (0.40, 0.55), (0.62, 0.75), (0.38, 0.75),
            (0.63, 0.95), (0.37, 0.95)]


def person(rng, x, y, h, missing=0.15, occluded=0.15):
    w = 0.5 * h
    kps = []
    for tx, ty in TEMPLATE:
        r = rng.random()
        if r < missing:
            kps += [0, 0, 0]
        else:
            v = 1 if r < missing + occluded else 2
            kps += [round(x + tx * w + rng.gauss(0, 0.02 * h)),
                    round(y + ty * h + rng.gauss(0, 0.02 * h)), v]
    bbox = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
    area = round(0.55 * w * h, 4)
    return kps, bbox, area


def detect(rng, gt_kps, bbox, noise, score):
    x, y, w, h = bbox
    out = []
    for j in range(17):
        gx, gy, v = gt_kps[3 * j:3 * j + 3]
        if v == 0:
            gx, gy = x + TEMPLATE[j][0] * w, y + TEMPLATE[j][1] * h
        out += [round(gx + rng.gauss(0, noise * h), 3), round(gy + rng.gauss(0, noise * h), 3),
                round(rng.random(), 3)]
    return {"keypoints": out, "score": score}


def build(rng):
    images, anns, dets = [], [], []
    next_id = [100]

    def add_gt(image_id, kps, bbox, area, iscrowd=0, num=None):
        anns.append({"id": next_id[0], "image_id": image_id, "category_id": 1,
                     "keypoints": kps, "bbox": bbox, "area": area, "iscrowd": iscrowd,
                     "num_keypoints": sum(1 for v in kps[2::3] if v > 0) if num is None else num})
        next_id[0] += 1

    def add_det(image_id, d):
        d = dict(d)
        d.update({"image_id": image_id, "category_id": 1})
        dets.append(d)

    ids = [3, 1, 10, 42, 7, 8, 99, 5]
    for image_id in ids:
        images.append({"id": image_id, "file_name": f"{image_id:06d}.jpg", "width": 640, "height": 480})
        people = []
        if image_id in (3, 1, 5, 99):
            for _ in range(rng.randint(2, 4)):
                h = rng.choice([30, 45, 60, 90, 120, 160, 220, 300]) * rng.uniform(0.9, 1.1)
                people.append(person(rng, rng.uniform(0, 500), rng.uniform(0, 300), h))
        elif image_id == 10:
            # A crowd region (no keypoints), a person, and an unlabelled person.
            add_gt(image_id, [0] * 51, [300.0, 100.0, 200.0, 150.0], 21000.0, iscrowd=1)
            add_gt(image_id, [0] * 51, [20.0, 30.0, 15.0, 40.0], 400.0)
            people.append(person(rng, 50, 120, 180))
        elif image_id == 7:
            people.append(person(rng, 100, 100, 150))  # never detected
        elif image_id == 8:
            for _ in range(5):
                people.append(person(rng, rng.uniform(0, 500), rng.uniform(0, 300),
                                     rng.uniform(40, 200)))
        for kps, bbox, area in people:
            add_gt(image_id, kps, bbox, area)
        if image_id == 7:
            continue
        for kps, bbox, area in people:
            if sum(kps[2::3]) == 0:
                continue
            n = rng.choice([1, 1, 2, 3])
            for k in range(n):
                noise = rng.choice([0.005, 0.01, 0.02, 0.04, 0.08]) * (1 + k)
                score = round(rng.choice([0.9, 0.8, 0.7, 0.5, 0.3]) * rng.uniform(0.8, 1.0), 2)
                add_det(image_id, detect(rng, kps, bbox, noise, score))
        if image_id == 10:
            # Detections inside and near the crowd region.
            for k in range(3):
                fake = [300 + rng.uniform(0, 200), 100 + rng.uniform(0, 150)]
                kp = []
                for tx, ty in TEMPLATE:
                    kp += [round(fake[0] + tx * 40, 2), round(fake[1] + ty * 80, 2), 1]
                add_det(image_id, {"keypoints": kp, "score": 0.6 + 0.1 * k})
        if image_id in (42, 8, 99):
            for k in range(3 if image_id != 8 else 22):
                fx, fy, fh = rng.uniform(0, 500), rng.uniform(0, 300), rng.uniform(20, 250)
                kps, bbox, _ = person(rng, fx, fy, fh, missing=0, occluded=0)
                add_det(image_id, {"keypoints": [float(v) for v in kps],
                                   "score": round(rng.uniform(0.05, 0.95), 2)})
    # Tied scores across images.
    for d in dets[::7]:
        d["score"] = 0.5
    return images, anns, dets


SEEDS = {"a": 20240607, "b": 7, "c": 123456}


def evaluate(out, name, seed):
    rng = random.Random(seed)
    images, anns, dets = build(rng)
    gt = {"info": {"description": "posescope COCOeval test case %s (synthetic)" % name},
          "licenses": [], "images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "supercategory": "person",
                          "keypoints": NAMES, "skeleton": []}]}
    gt_path = os.path.join(out, "coco_%s_gt.json" % name)
    dt_path = os.path.join(out, "coco_%s_dt.json" % name)
    with open(gt_path, "w") as f:
        json.dump(gt, f, indent=1)
    with open(dt_path, "w") as f:
        json.dump(dets, f, indent=1)
    coco = COCO(gt_path)
    ev = COCOeval(coco, coco.loadRes(dt_path), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    keys = ["ap", "ap50", "ap75", "ap_medium", "ap_large",
            "ar", "ar50", "ar75", "ar_medium", "ar_large"]
    return {"stats": {k: float(v) for k, v in zip(keys, ev.stats)},
            "images": len(images), "annotations": len(anns), "detections": len(dets)}


def check(gt_path, dt_path):
    """pycocotools on a results file exactly as written (plain `loadRes`)."""
    coco = COCO(gt_path)
    res = coco.loadRes(dt_path)
    ev = COCOeval(coco, res, "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    keys = ["ap", "ap50", "ap75", "ap_medium", "ap_large",
            "ar", "ar50", "ar75", "ar_medium", "ar_large"]
    print(json.dumps({
        "source": "pycocotools %s COCOeval(iouType='keypoints'), numpy %s" % (
            importlib.metadata.version("pycocotools"), np.__version__),
        "stats": {k: float(v) for k, v in zip(keys, ev.stats)},
        "detections": len(res.dataset["annotations"])}, indent=1))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
        return
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/eval"
    os.makedirs(out, exist_ok=True)
    expected = {
        "source": "pycocotools %s COCOeval(iouType='keypoints'), numpy %s" % (
            importlib.metadata.version("pycocotools"), np.__version__),
        "cases": {name: evaluate(out, name, seed) for name, seed in SEEDS.items()},
    }
    with open(os.path.join(out, "coco_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
