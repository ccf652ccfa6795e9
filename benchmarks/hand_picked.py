"""Hand-picked subnets of the mbv3 space at the searched budget: is the space's ceiling higher?

  python benchmarks/hand_picked.py --arch runs/search_vs_zoo/search/pixel4/arch.json --out runs/hand_picked
  python benchmarks/search_vs_zoo.py --arch runs/hand_picked/late_b/arch.json --models none \
      --seed S --out runs/hand_picked/late_b/seedS

The zoo comparison trains every network as deployed (32x downsampling) on 28 px images, so
stages 2-4 run on 4, 2 and 1 px maps, where a latency table at 224 px charges least per
multiply-add: there capacity is cheapest. These picks put it there (every late block at
expansion 6 and depth 4, kernel 3, where a larger kernel only sees padding) and keep the early
stages at their smallest, within the same budget. Each is written as a search result (the
search's budget fields, its own spec, choices and predicted latency, marked hand-picked) for
`search_vs_zoo.py --arch` to train like the searched network.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.files import write_atomic
from latency_models.device_profiles import load_predictor
from search_spaces import get_space
from search_spaces.graph import count_macs, count_params

# per stage: (depth, kernel, expansion per block); width 1.2 does not fit a MobileNetV2-1.0
# budget on pixel4 with these depths (43 ms)
PICKS = {
    "late_a": [(2, 3, (3,)), (2, 3, (3,)), (4, 3, (6,)), (4, 3, (6,)), (3, 3, (6,))],
    "late_b": [(2, 3, (3,)), (2, 3, (3,)), (4, 3, (6, 6, 6, 4)), (4, 3, (6,)), (4, 3, (6, 6, 6, 4))],
}


def main() -> int:

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, help="the search result whose budget and target to use")
    p.add_argument("--out", default="runs/hand_picked")
    args = p.parse_args()
    searched = json.loads(Path(args.arch).read_text())
    space = get_space(searched["space"])
    predictor = load_predictor(searched["target"]["name"], searched["target"]["precision"])
    for name, stages in PICKS.items():
        values = {"resolution": searched["resolution"], "width": 1.0}
        for s, (depth, kernel, expansions) in enumerate(stages):
            values[f"stage{s}.depth"] = depth
            for b in range(depth):
                values[f"stage{s}.block{b}.kernel"] = kernel
                values[f"stage{s}.block{b}.expansion"] = expansions[min(b, len(expansions) - 1)]
        choices = space.from_values(values)
        spec = space.materialize(choices).with_name(f"hand-picked {name}")
        latency = predictor.spec_ms(spec, searched["target"]["precision"])
        fits = latency <= searched["budget_ms"]
        verdict = "fits" if fits else "OVER"
        print(f"{name}: {latency:.2f} ms predicted, budget {searched['budget_ms']:.2f} ms ({verdict})")
        if fits:
            result = {
                **searched,
                "spec": spec.to_dict(),
                "spec_hash": spec.content_hash(),
                "choices": space.values(space.canonical(choices)),
                "predicted_latency_ms": latency,
                "macs": count_macs(spec),
                "params": count_params(spec),
                "hand_picked": name,
            }
            for key in ("estimated_top1", "supernet_top1", "search"):
                result.pop(key, None)
            write_atomic(Path(args.out) / name / "arch.json", json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
