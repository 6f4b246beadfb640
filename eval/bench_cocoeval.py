"""Times `detq cocoeval` against faster-coco-eval, end to end (JSON loading included).

Generates a seeded case (eval/tools/make_bench_case.py: by default 5000 images, 80 categories,
about 100 detections per image) into a temporary folder, then runs, alternately and each in its
own process, `detq cocoeval --json` and a faster-coco-eval script (COCO(), loadRes, evaluate,
accumulate, summarize). Prints each run's wall and CPU time, the medians, their ratio, and the
largest difference between the two tools' 12 stats.

Use (from the repository root, with a release build):
    swift build -c release --product detq
    .venv-ref/bin/python eval/bench_cocoeval.py .build/release/detq [--runs 5] [--images 5000]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
from make_bench_case import make_case  # noqa: E402

FASTER_COCO_EVAL = """
import json, sys
from faster_coco_eval import COCO, COCOeval_faster
gt = COCO(sys.argv[1])
dt = gt.loadRes(sys.argv[2])
evaluator = COCOeval_faster(gt, dt, "bbox", print_function=lambda *a, **k: None)
evaluator.evaluate()
evaluator.accumulate()
evaluator.summarize()
print(json.dumps({"stats": [float(v) for v in evaluator.stats]}))
"""


def timed(command):
    """Runs command; returns (wall seconds, CPU seconds of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        sys.exit(f"{command[0]} failed: {completed.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, completed.stdout


def stats_of(stdout):
    return json.loads(stdout[stdout.index("{"):])["stats"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("detq", help="path to the detq binary (a release build)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100, help="mean detections per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="detq-bench-") as folder:
        gt, dt = make_case(folder, args.images, args.dets, args.seed)
        with open(dt) as f:
            detections = len(json.load(f))
        print(f"case: {args.images} images, {detections} detections; "
              f"instances {os.path.getsize(gt) / 1e6:.1f} MB, results {os.path.getsize(dt) / 1e6:.1f} MB")
        tools = {
            "detq": [os.path.abspath(args.detq), "cocoeval", "--gt", gt, "--dt", dt, "--json", "--quiet"],
            "faster-coco-eval": [sys.executable, "-c", FASTER_COCO_EVAL, gt, dt],
        }
        walls = {name: [] for name in tools}
        cpus = {name: [] for name in tools}
        stats = {}
        for run in range(args.runs):
            for name, command in tools.items():
                wall, cpu, stdout = timed(command)
                walls[name].append(wall)
                cpus[name].append(cpu)
                stats[name] = stats_of(stdout)
                print(f"run {run + 1}  {name:17s} wall {wall:7.3f} s  cpu {cpu:7.3f} s")
        difference = max(abs(a - b) for a, b in zip(stats["detq"], stats["faster-coco-eval"]))
        print(f"largest difference between the stats: {difference:.3g}")
        for name in tools:
            print(f"median {name:17s} wall {statistics.median(walls[name]):7.3f} s  "
                  f"cpu {statistics.median(cpus[name]):7.3f} s")
        ratio_wall = statistics.median(walls["detq"]) / statistics.median(walls["faster-coco-eval"])
        ratio_cpu = statistics.median(cpus["detq"]) / statistics.median(cpus["faster-coco-eval"])
        print(f"detq / faster-coco-eval: wall {ratio_wall:.3f}, cpu {ratio_cpu:.3f}")


if __name__ == "__main__":
    main()
