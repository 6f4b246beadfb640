"""How well a RetinaNet anchor set covers the shapes: for each training shape, the best IoU of any
anchor and the number of anchors torchvision's `Matcher` makes positive for it (IoU thresholds as
RetinaNet's `fg_iou_thresh` / `bg_iou_thresh`, with low-quality matches), by COCO size class; with
`--atss-topk K`, also the positives of ATSS assignment (atss.py, k = K candidates per level).

This is how the shipped RetinaNet's anchor sizes were chosen (see its README): anchors as large as
the level strides leave 43 % of the shapes without any anchor at IoU >= 0.5.

Usage (dev time, needs torch):
    .venv-ref/bin/python detectors/tools/anchor_coverage.py [--images 300] [--bases 8,16,32,64,128 ...] [--scales 1,2,4 ...]
        [--aspect-ratios 1.0 ...] [--atss-topk 9 18 ...]
"""
import argparse
import json
import os
import statistics
import sys

import torch
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atss  # noqa: E402
import shapes_models  # noqa: E402
from class_accuracy import size_class  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def anchors_for(bases, size, strides, aspect_ratios=(0.5, 1.0, 2.0), scales=None):
    """(anchors [N, 4], anchors per level) of one size-px image, built as the shipped RetinaNet builds its
    anchor generator (`scales`: per-level size multipliers instead of torchvision's 1, 2^(1/3), 2^(2/3))."""
    sizes = (shapes_models._retinanet_anchor_sizes(bases) if scales is None
             else [[int(b * s) for s in scales] for b in bases])
    generator = shapes_models._anchor_generator({"sizes": sizes, "aspect_ratios": [list(aspect_ratios)] * len(sizes)})
    images = ImageList(torch.zeros(1, 3, size, size), [(size, size)])
    features = [torch.zeros(1, 1, size // s, size // s) for s in strides]
    per_level = [(size // s) ** 2 * n for s, n in zip(strides, generator.num_anchors_per_location())]
    return generator(images, features)[0], per_level


def shapes_per_image(dataset, count, size):
    """[(gt boxes xyxy in the resized size-px frame, annotations)] of the first `count` images that have
    non-crowd shapes."""
    per_image = {}
    for a in dataset["annotations"]:
        if not a["iscrowd"]:
            per_image.setdefault(a["image_id"], []).append(a)
    out = []
    for im in dataset["images"][:count]:
        anns = per_image.get(im["id"], [])
        if anns:
            scale = min(size / min(im["width"], im["height"]), size / max(im["width"], im["height"]))
            gt = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                               for a in anns]) * scale
            out.append((gt, anns))
    return out


def coverage(images, anchors, fg, bg, per_level=None, atss_topk=None):
    """Coverage with IoU matching at fg / bg, or with ATSS (k = atss_topk per level; fg, bg unused)."""
    matcher = Matcher(fg, bg, allow_low_quality_matches=True)
    positives = {"small": [], "medium": [], "large": []}
    best = []
    for gt, anns in images:
        iou = box_iou(gt, anchors)
        matched = matcher(iou) if atss_topk is None else atss.atss_match(gt, anchors, per_level, atss_topk, iou)
        for j, a in enumerate(anns):
            positives[size_class(a["area"])].append(int((matched == j).sum()))
        best.extend(iou.max(dim=1).values.tolist())
    return {
        "shapes": len(best),
        "median_best_iou": statistics.median(best),
        "share_best_iou_below_fg": sum(b < fg for b in best) / len(best),
        "mean_positives": {k: (sum(v) / len(v) if v else None) for k, v in positives.items()},
        "without_positive": sum(x == 0 for v in positives.values() for x in v),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", default=os.path.join(REPO, "datasets", "shapes", "train"))
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--bases", nargs="+", default=["8,16,32,64,128", "12,24,48,96,192", "16,32,64,128,256"],
                        help="anchor base sizes per level (P3-P7), comma-separated; one set per argument")
    parser.add_argument("--thresholds", nargs="+", default=["0.5,0.4", "0.4,0.3"], help="fg,bg IoU thresholds")
    parser.add_argument("--aspect-ratios", nargs="+", default=["0.5,1.0,2.0"],
                        help="anchor aspect ratios (height / width), comma-separated; one set per argument")
    parser.add_argument("--scales", nargs="+", default=["torchvision"],
                        help="anchor size multipliers per level, comma-separated (one set per argument); "
                             "'torchvision' = 1, 2^(1/3), 2^(2/3) truncated")
    parser.add_argument("--atss-topk", nargs="*", type=int, default=[],
                        help="also rows with ATSS assignment, k candidates per level (one row per value)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with open(os.path.join(args.train_dir, "instances.json")) as f:
        dataset = json.load(f)
    config = shapes_models.default_config("retinanet")
    size, strides = shapes_models.IMAGE_SIZE, config["fpn"]["strides"]
    print(f"{args.images} training images, {size}-px input, strides {strides}; current config: "
          f"sizes {config['anchor_generator']['sizes']}, thresholds {config['fg_iou_thresh']}/{config['bg_iou_thresh']}")
    print("| bases | scales | aspect ratios | assignment (fg / bg) | median best IoU | best IoU < fg | positives small / medium / large "
          "| shapes without |")
    print("| --- | --- | --- | --- | ---: | ---: | --- | ---: |")
    images = shapes_per_image(dataset, args.images, size)
    for bases in args.bases:
        for scales, ratios in ((sc, r) for sc in args.scales for r in args.aspect_ratios):
            anchors, per_level = anchors_for([int(b) for b in bases.split(",")], size, strides,
                                  [float(r) for r in ratios.split(",")],
                                  None if scales == "torchvision" else [float(x) for x in scales.split(",")])
            rows = [(t, None) for t in args.thresholds] + [("0.5,0.4", k) for k in args.atss_topk]
            for t, k in rows:
                fg, bg = (float(x) for x in t.split(","))
                c = coverage(images, anchors, fg, bg, per_level, k)
                m = c["mean_positives"]
                assignment = f"{fg} / {bg}" if k is None else f"ATSS k = {k}"
                print(f"| {bases} | {scales} | {ratios} | {assignment} | {c['median_best_iou']:.2f} | "
                      f"{100 * c['share_best_iou_below_fg']:.0f} % | "
                      f"{m['small']:.1f} / {m['medium']:.1f} / {m['large']:.1f} | {c['without_positive']} of {c['shapes']} |")


if __name__ == "__main__":
    main()
