"""Measures a shipped shapes model's COCO AP twice — torchvision 0.14 + pycocotools, and `detq eval` —
on datasets/shapes/val, checks they agree within 0.002, and writes both rows into the model's README
(section "In detq").

Usage (dev time, needs torch and pycocotools):
    .venv-ref/bin/python detectors/tools/compare_shapes_ap.py --name retinanet_mobilenet_v2_shapes [--detq PATH]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_shapes_torch  # noqa: E402

REPO = eval_shapes_torch.REPO
NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl"]


def detq_stats(detq, name):
    with tempfile.TemporaryDirectory() as work:
        report = os.path.join(work, "report.json")
        subprocess.run([detq, "eval", "--model", name, "--weights", f"detectors/{name}/weights.safetensors",
                        "--images", "datasets/shapes/val/images", "--annotations", "datasets/shapes/val/instances.json",
                        "--report", report, "--quiet"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        with open(report) as f:
            return json.load(f)["stats"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--detq", default=os.path.join(REPO, ".build", "release", "detq"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, config = eval_shapes_torch.load_shipped(args.name)
    torch_stats, _, _ = eval_shapes_torch.evaluate_model(model, config, quiet=True)
    detq = detq_stats(args.detq, args.name)
    worst = max(abs(a - b) for a, b in zip(torch_stats, detq))
    rows = [("torchvision 0.14 + pycocotools", torch_stats), ("detq eval", detq)]
    table = ["| evaluated by | " + " | ".join(NAMES) + " |", "| --- |" + " ---: |" * len(NAMES)]
    table += [f"| {who} | " + " | ".join(f"{v:.3f}" for v in stats[:6]) + " |" for who, stats in rows]
    section = f"""## In detq

`config.json` is detq's description (made by `detectors/tools/detq_config.py` from `architecture.json`,
the torchvision description `shapes_models.py` builds from). The same weights on `datasets/shapes/val`
(200 images), evaluated by torchvision and by detq:

{chr(10).join(table)}

Largest difference over pycocotools' 12 stats: {worst:.2e} (made by
`.venv-ref/bin/python detectors/tools/compare_shapes_ap.py --name {args.name}`; the detq command is
`detq eval --model {args.name} --weights detectors/{args.name}/weights.safetensors --images datasets/shapes/val/images --annotations datasets/shapes/val/instances.json`).
"""
    readme = os.path.join(REPO, "detectors", args.name, "README.md")
    with open(readme) as f:
        text = f.read()
    text = re.sub(r"## In detq\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip() + "\n\n" + section
    with open(readme, "w") as f:
        f.write(text)
    for who, stats in rows:
        print(f"{who:32s} " + " ".join(f"{n} {v:.4f}" for n, v in zip(NAMES, stats)))
    print(f"largest difference {worst:.2e} -> {'OK' if worst <= 0.002 else 'MISMATCH'} (limit 0.002)")
    return 0 if worst <= 0.002 else 1


if __name__ == "__main__":
    sys.exit(main())
