#!/usr/bin/env python3
"""DEVELOPMENT-TIME ONLY: not part of the product, its build or its tests.

Checks a COCO keypoint results file written by `posescope infer --write-coco` (or
`posescope eval --predictions`) with its real consumer: pycocotools loads the annotations
and the results exactly as they are (`COCO.loadRes`, no edits) and runs
`COCOeval(iouType="keypoints")`, printing the usual summary and the ten stats as JSON.

    python3 -m venv /tmp/pycoco && /tmp/pycoco/bin/pip install pycocotools numpy
    posescope infer --input ../shared/data/mmpose_testdata/coco --out /tmp/out \
        --write-coco /tmp/results.json
    /tmp/pycoco/bin/python scripts/check_coco_results.py \
        ../shared/data/mmpose_testdata/coco/test_coco.json /tmp/results.json

Exits non-zero when pycocotools refuses the file. Note that `loadRes` takes each
detection's box and area from all its keypoints, the `0, 0, 0` of joints not found
included; the overall AP/AR do not depend on it (only the medium/large split of unmatched
detections does).
"""
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    gt_path, dt_path = sys.argv[1], sys.argv[2]
    with open(dt_path) as f:
        results = json.load(f)
    if not results:
        # loadRes cannot load an empty list (it reads the first entry's keys).
        sys.exit(f"{dt_path}: no detections to evaluate")
    gt = COCO(gt_path)
    dt = gt.loadRes(dt_path)
    print(f"{len(results)} detections on {len({r['image_id'] for r in results})} images")
    ev = COCOeval(gt, dt, "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    names = ["ap", "ap50", "ap75", "ap_medium", "ap_large",
             "ar", "ar50", "ar75", "ar_medium", "ar_large"]
    print(json.dumps(dict(zip(names, [round(float(v), 6) for v in ev.stats]))))


if __name__ == "__main__":
    main()
