"""Localisation against classification errors of a detector's COCO results on datasets/shapes/val.

For every non-crowd shape: is there any detection (of any class) at IoU >= 0.5 ("located")? If so,
does the highest-scoring of those detections carry the shape's class? Printed overall and by COCO
size class (small < 32², medium < 96², large), with the most frequent confusions (true → detected).

Python 3 standard library only. The results file comes from
    .venv-ref/bin/python detectors/tools/eval_shapes_torch.py --name NAME --results R.json
or from `detq eval --results R.json`.

Usage:
    python3 detectors/tools/class_accuracy.py R.json [R2.json ...]
"""
import argparse
import collections
import json
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VAL_ANNOTATIONS = os.path.join(REPO, "datasets", "shapes", "val", "instances.json")


def iou_xywh(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def size_class(area):
    return "small" if area < 32 ** 2 else ("medium" if area < 96 ** 2 else "large")


def class_accuracy(gt, results):
    """{'located': n, 'missed': n, 'right': {size: [right, located]}, 'confusions': Counter}."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    by_image = collections.defaultdict(list)
    for d in results:
        by_image[d["image_id"]].append(d)
    out = {"located": 0, "missed": 0, "right": {k: [0, 0] for k in ("all", "small", "medium", "large")},
           "confusions": collections.Counter()}
    for a in gt["annotations"]:
        if a.get("iscrowd"):
            continue
        hits = [d for d in by_image[a["image_id"]] if iou_xywh(d["bbox"], a["bbox"]) >= 0.5]
        if not hits:
            out["missed"] += 1
            continue
        out["located"] += 1
        best = max(hits, key=lambda d: d["score"])
        right = best["category_id"] == a["category_id"]
        for key in ("all", size_class(a["area"])):
            out["right"][key][0] += right
            out["right"][key][1] += 1
        if not right:
            out["confusions"][(names[a["category_id"]], names[best["category_id"]])] += 1
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="COCO results JSON files")
    parser.add_argument("--annotations", default=VAL_ANNOTATIONS)
    args = parser.parse_args(argv)
    with open(args.annotations) as f:
        gt = json.load(f)
    for path in args.results:
        with open(path) as f:
            results = json.load(f)
        r = class_accuracy(gt, results)
        shares = " ".join("%s %.3f (%d)" % (k, v[0] / v[1], v[1]) if v[1] else "%s -" % k for k, v in r["right"].items())
        print(f"{path}: located {r['located']}, missed {r['missed']}; right class of the best located detection: {shares}")
        print("  confusions (true → detected): " + ", ".join(
            f"{t} → {d} {n}" for (t, d), n in r["confusions"].most_common(6)))


if __name__ == "__main__":
    main()
