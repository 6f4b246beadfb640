"""Generates a large, seeded COCO evaluation case (instances + results) for benchmarks.

The results look like a detector's: boxes and scores are float32 values written as Python
floats (up to 17 significant digits, as torchvision's reference scripts write them), about
`dets_per_image` detections per image over the 80 COCO category ids, a third of them near
a ground-truth box.

Use:  python eval/tools/make_bench_case.py OUT_DIR [--images 5000] [--dets 100] [--seed 0]
"""
import argparse
import json
import os

import numpy as np

# The 80 COCO category ids (non-contiguous, 1..90).
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49,
            50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74,
            75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def make_case(out_dir, images=5000, dets_per_image=100, seed=0):
    """Writes out_dir/instances.json and out_dir/results.json; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    image_records, annotations, results = [], [], []
    ann_id = 1
    for index in range(images):
        image_id = 100000 + 7 * index
        width, height = int(rng.integers(320, 641)), int(rng.integers(240, 481))
        image_records.append({"id": image_id, "file_name": f"{image_id:012d}.jpg",
                              "width": width, "height": height})
        gts = []
        for _ in range(int(rng.integers(0, 15))):
            w = float(np.exp(rng.uniform(np.log(4), np.log(width * 0.9))))
            h = float(np.exp(rng.uniform(np.log(4), np.log(height * 0.9))))
            x = float(rng.uniform(0, width - w))
            y = float(rng.uniform(0, height - h))
            box = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
            category = int(rng.choice(COCO_IDS[:40])) if rng.random() < 0.8 else int(rng.choice(COCO_IDS))
            crowd = 1 if rng.random() < 0.01 else 0
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": category,
                                "bbox": box, "area": round(box[2] * box[3], 4), "iscrowd": crowd,
                                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
            gts.append((box, category))
            ann_id += 1
        count = int(rng.integers(dets_per_image // 2, dets_per_image * 3 // 2 + 1))
        boxes = np.empty((count, 4), dtype=np.float32)
        cats = np.empty(count, dtype=np.int64)
        for d in range(count):
            if gts and rng.random() < 0.33:
                (x, y, w, h), category = gts[int(rng.integers(len(gts)))]
                jitter = rng.normal(0, 0.1, 4)
                boxes[d] = [x + jitter[0] * w, y + jitter[1] * h, w * np.exp(jitter[2]), h * np.exp(jitter[3])]
                cats[d] = category if rng.random() < 0.9 else rng.choice(COCO_IDS)
            else:
                w = np.exp(rng.uniform(np.log(2), np.log(width)))
                h = np.exp(rng.uniform(np.log(2), np.log(height)))
                boxes[d] = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
                cats[d] = rng.choice(COCO_IDS)
        scores = rng.random(count).astype(np.float32)
        for d in range(count):
            results.append({"image_id": image_id, "category_id": int(cats[d]),
                            "bbox": boxes[d].tolist(), "score": float(scores[d])})
    categories = [{"id": c, "name": f"class_{c}", "supercategory": "thing"} for c in COCO_IDS]
    gt_path = os.path.join(out_dir, "instances.json")
    dt_path = os.path.join(out_dir, "results.json")
    with open(gt_path, "w") as f:
        json.dump({"info": {"description": "detq benchmark case"}, "licenses": [],
                   "images": image_records, "annotations": annotations, "categories": categories}, f)
    with open(dt_path, "w") as f:
        json.dump(results, f)
    return gt_path, dt_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in make_case(args.out_dir, args.images, args.dets, args.seed):
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
