"""How sure is an AP drop? A paired bootstrap over the evaluation images.

Two detection results on the same ground truth (e.g. FP32 and a quantized model, both written by
`detq eval --results`) give one AP drop. Which images the evaluation set holds decides a good part
of it: this script draws the images with replacement (the same draw for both results, so the drop
is paired), evaluates both with `detq cocoeval` on each draw, and reports the spread of the drop:
its standard error, a percentile interval, and the share of draws in which the drop stays within a
bound. A bound that falls inside the interval cannot be confirmed or ruled out on these images.

Standard library only; needs the built detq (`swift build -c release`).
Usage:
    python3 eval/ap_bootstrap.py --gt datasets/shapes/val/instances.json \\
        --base out/quantization/M/fp32.results.json --other out/quantization/M/w8a8_rtn_per-channel_all.results.json \\
        [--resamples 1000] [--seed 0] [--bound 0.5] [--json OUT.json]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"error: {what} {path}: {e}")


class Resampler:
    """Writes the ground truth and each result list for a draw of image ids (with repeats): the k-th
    drawn image becomes image k, with its annotations and detections copied. Every record is
    serialised once; a draw only joins the strings."""

    def __init__(self, gt, results, folder):
        def body(record, *drop):
            text = json.dumps({k: v for k, v in record.items() if k not in drop})
            return text[1:-1]  # the members without braces; empty for a record with nothing else
        self.folder = folder
        self.head = json.dumps({k: v for k, v in gt.items() if k not in ("images", "annotations")})[1:-1]
        self.images = {image["id"]: body(image, "id") for image in gt["images"]}
        self.annotations = {}
        for a in gt["annotations"]:
            self.annotations.setdefault(a["image_id"], []).append(body(a, "id", "image_id"))
        self.results = []
        for detections in results:
            by_image = {}
            for d in detections:
                by_image.setdefault(d["image_id"], []).append(body(d, "image_id"))
            self.results.append(by_image)

    @staticmethod
    def record(members, **ids):
        prefix = ", ".join('"%s": %d' % kv for kv in ids.items())
        return "{" + prefix + (", " + members if members else "") + "}"

    def write(self, draw):
        images, annotations = [], []
        results = [[] for _ in self.results]
        for k, image_id in enumerate(draw, start=1):
            images.append(self.record(self.images[image_id], id=k))
            for a in self.annotations.get(image_id, []):
                annotations.append(self.record(a, id=len(annotations) + 1, image_id=k))
            for out, by_image in zip(results, self.results):
                out.extend(self.record(d, image_id=k) for d in by_image.get(image_id, []))
        gt_path = os.path.join(self.folder, "gt.json")
        with open(gt_path, "w") as f:
            f.write("{" + self.head + (", " if self.head else "") + '"images": [' + ", ".join(images) +
                    '], "annotations": [' + ", ".join(annotations) + "]}")
        paths = []
        for i, out in enumerate(results):
            paths.append(os.path.join(self.folder, "dt%d.json" % i))
            with open(paths[-1], "w") as f:
                f.write("[" + ", ".join(out) + "]")
        return gt_path, paths


def coco_ap(detq, gt_path, dt_path):
    """AP (stats[0]) by `detq cocoeval --json`."""
    run = subprocess.run([detq, "cocoeval", "--gt", gt_path, "--dt", dt_path, "--json"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"error: detq cocoeval failed on {dt_path}: {run.stderr.strip()}")
    return json.loads(run.stdout)["stats"][0]


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bootstrap(detq, gt_file, base_file, other_file, gt, base, other, resamples, seed):
    """The observed drop (AP points) and the sorted drops of `resamples` paired draws."""
    image_ids = [image["id"] for image in gt["images"]]
    known = set(image_ids)
    for name, results in (("base", base), ("other", other)):
        unknown = {d["image_id"] for d in results} - known
        if unknown:
            raise SystemExit(f"error: --{name} has detections for image ids not in --gt (e.g. {min(unknown)})")
    generator = random.Random(seed)
    drops = []
    with tempfile.TemporaryDirectory(prefix="ap_bootstrap_") as folder:
        resampler = Resampler(gt, [base, other], folder)
        gt_path, (base_path, other_path) = resampler.write(image_ids)
        observed = 100 * (coco_ap(detq, gt_path, base_path) - coco_ap(detq, gt_path, other_path))
        # self-check: the identity draw, renumbered, must give the files' own AP
        direct = 100 * (coco_ap(detq, gt_file, base_file) - coco_ap(detq, gt_file, other_file))
        if abs(direct - observed) > 1e-9:
            raise SystemExit(f"error: renumbered files give a drop of {observed} points, the files themselves {direct}")
        for i in range(resamples):
            draw = [generator.choice(image_ids) for _ in image_ids]
            gt_path, (base_path, other_path) = resampler.write(draw)
            drops.append(100 * (coco_ap(detq, gt_path, base_path) - coco_ap(detq, gt_path, other_path)))
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{resamples} draws", file=sys.stderr, flush=True)
    return observed, sorted(drops)


def summary(observed, drops, bound):
    mean = sum(drops) / len(drops)
    sd = (sum((d - mean) ** 2 for d in drops) / (len(drops) - 1)) ** 0.5
    return {"drop": round(observed, 3), "bootstrap_mean": round(mean, 3), "standard_error": round(sd, 3),
            "interval_95": [round(percentile(drops, 0.025), 3), round(percentile(drops, 0.975), 3)],
            "bound": bound, "share_within_bound": round(sum(d <= bound for d in drops) / len(drops), 3),
            "resamples": len(drops)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="COCO instances file")
    parser.add_argument("--base", required=True, help="results of the reference model (e.g. FP32)")
    parser.add_argument("--other", required=True, help="results of the compared model (e.g. quantized)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", type=float, default=0.5, help="AP points: report the share of draws with drop ≤ bound")
    parser.add_argument("--detq", default=os.path.join(REPO, ".build", "release", "detq"))
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args(argv)
    if args.resamples < 2:
        parser.error("--resamples must be at least 2")
    if not os.path.exists(args.detq):
        raise SystemExit(f"error: {args.detq} not found: run `swift build -c release` first")
    gt = load_json(args.gt, "--gt")
    base, other = load_json(args.base, "--base"), load_json(args.other, "--other")
    observed, drops = bootstrap(args.detq, args.gt, args.base, args.other, gt, base, other, args.resamples, args.seed)
    result = summary(observed, drops, args.bound)
    result.update({"gt": args.gt, "base": args.base, "other": args.other, "seed": args.seed})
    low, high = result["interval_95"]
    print(f"AP drop {observed:.2f} points; over {args.resamples} paired draws of the {len(gt['images'])} images: "
          f"standard error {result['standard_error']:.2f}, 95 % interval [{low:.2f}, {high:.2f}], "
          f"drop ≤ {args.bound} in {100 * result['share_within_bound']:.1f} % of draws")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.json)
    return result


if __name__ == "__main__":
    main()
