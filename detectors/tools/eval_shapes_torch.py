"""Evaluates a shipped `<family>_mobilenet_v2_shapes` detector in torchvision on datasets/shapes/val with pycocotools.

The model is rebuilt from detectors/<name>/config.json (FrozenBatchNorm2d) and loaded strictly from
detectors/<name>/weights.safetensors (F16 -> F32). Prints AP, AP50, AP75, APs, APm, APl and
optionally writes detectors/<name>/golden_detections.json: torchvision's final detections on the
first few val images, for parity checks of a reimplementation.

Usage:
    python detectors/tools/eval_shapes_torch.py --name fcos_mobilenet_v2_shapes [--results R.json] [--golden 3]
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import shapes_models  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VAL_DIR = os.path.join(REPO, "datasets", "shapes", "val")
STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def load_shipped(name, detectors_dir=None):
    """(model in eval mode, config) for detectors/<name>, weights read back from safetensors as F32."""
    folder = os.path.join(detectors_dir or os.path.join(REPO, "detectors"), name)
    # architecture.json: the torchvision description (config.json is detq's, made from it)
    with open(os.path.join(folder, "architecture.json")) as f:
        config = json.load(f)
    model = shapes_models.build_model(config, training=False)
    state, _ = safetensors_io.load(os.path.join(folder, "weights.safetensors"))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, config


def read_image(path):
    """[3, H, W] float32 in 0..1 from an RGB file (PIL decode)."""
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@torch.no_grad()
def detect(model, paths, batch_size=8):
    """torchvision detections per path: list of dicts with boxes [N, 4] xyxy, scores [N], labels [N]."""
    outputs = []
    for start in range(0, len(paths), batch_size):
        images = [read_image(p) for p in paths[start:start + batch_size]]
        outputs.extend(model(images))
    return outputs


def coco_evaluate(annotations_path, results, quiet=False):
    """pycocotools bbox evaluation; returns the 12 stats (AP... ARl)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotations_path)
        if not results:
            return [0.0] * 12
        dt = gt.loadRes(results)
    evaluator = COCOeval(gt, dt, "bbox")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    if not quiet:
        print(buffer.getvalue(), end="")
    return [float(s) for s in evaluator.stats]


def evaluate_model(model, config, val_dir=VAL_DIR, results_path=None, quiet=False, limit=None, batch_size=8):
    """Runs `model` over the val split (`batch_size` images per forward) and scores it. Returns (stats, results, seconds)."""
    annotations_path = os.path.join(val_dir, "instances.json")
    with open(annotations_path) as f:
        dataset = json.load(f)
    images = dataset["images"][:limit] if limit else dataset["images"]
    label_map = {int(k): v for k, v in config["label_to_category_id"].items()}
    start = time.time()
    outputs = detect(model, [os.path.join(val_dir, "images", im["file_name"]) for im in images], batch_size)
    seconds = time.time() - start
    results = []
    for image, out in zip(images, outputs):
        for box, score, label in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
            x1, y1, x2, y2 = box
            results.append({"image_id": image["id"], "category_id": label_map[int(label)],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    if results_path:
        with open(results_path, "w") as f:
            json.dump(results, f)
    stats = coco_evaluate(annotations_path, results, quiet=quiet)
    return stats, results, seconds


def write_golden(model, config, name, count=3, val_dir=VAL_DIR, detectors_dir=None):
    """torchvision's final detections on the first `count` val images, in `detect --json` layout."""
    with open(os.path.join(val_dir, "instances.json")) as f:
        images = json.load(f)["images"][:count]
    paths = [os.path.join(val_dir, "images", im["file_name"]) for im in images]
    outputs = detect(model, paths, batch_size=1)
    entries = []
    for image, path, out in zip(images, paths, outputs):
        entries.append({"file": os.path.relpath(path, REPO), "width": image["width"], "height": image["height"],
                        "detections": detection_dicts(out)})
    source = config["roi_heads"] if config["family"] == "fasterrcnn" else config
    golden = {
        "model": name,
        "made_by": "detectors/tools/eval_shapes_torch.py --golden (torch 1.13, torchvision 0.14, eval mode, CPU)",
        "weights": f"detectors/{name}/weights.safetensors (F16, read as F32)",
        "input": "PIL RGB decode of the JPEG, /255 as float32, one image per forward call",
        "thresholds": {k: source[k] for k in ("score_thresh", "nms_thresh", "detections_per_img")},
        "images": entries,
    }
    folder = os.path.join(detectors_dir or os.path.join(REPO, "detectors"), name)
    path = os.path.join(folder, "golden_detections.json")
    with open(path, "w") as f:
        f.write(_compact_json(golden))
    return path


def detection_dicts(output):
    """One torchvision output as a list of {"box" (xyxy), "score", "label"}, in its (score) order."""
    return [{"box": box, "score": score, "label": label}
            for box, score, label in zip(output["boxes"].tolist(), output["scores"].tolist(), output["labels"].tolist())]


def _compact_json(golden):
    """JSON with one detection per line (exact float reprs), readable in a diff."""
    head = {k: v for k, v in golden.items() if k != "images"}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + [' "images": [']
    for i, image in enumerate(golden["images"]):
        meta = {k: v for k, v in image.items() if k != "detections"}
        lines.append("  {" + json.dumps(meta)[1:-1] + ', "detections": [')
        detections = [json.dumps(d) for d in image["detections"]]
        lines.extend(f"   {d}," for d in detections[:-1])
        if detections:
            lines.append(f"   {detections[-1]}")
        lines.append("  ]}" + ("," if i + 1 < len(golden["images"]) else ""))
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="detectors/<name>, e.g. fcos_mobilenet_v2_shapes")
    parser.add_argument("--val-dir", default=VAL_DIR)
    parser.add_argument("--results", help="write the COCO results here")
    parser.add_argument("--golden", type=int, default=0, help="write golden_detections.json for the first N images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the stats as one JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, config = load_shipped(args.name)
    stats, results, seconds = evaluate_model(model, config, args.val_dir, args.results, quiet=args.json)
    named = dict(zip(STAT_NAMES, stats))
    if args.json:
        print(json.dumps({"model": args.name, "stats": stats, **named, "seconds": seconds}))
    else:
        print(" ".join(f"{k} {named[k]:.3f}" for k in STAT_NAMES[:6]) + f"  ({len(results)} detections, {seconds:.1f} s)")
    if args.golden:
        print("wrote", write_golden(model, config, args.name, args.golden), file=sys.stderr)


if __name__ == "__main__":
    main()
