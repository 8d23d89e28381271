"""Diagnostic (not part of the package): does a fingertip pinch hold with MuJoCo's default contact impedance?

Generates pinch grasps only (``pinch_share`` 1) of each object on the Allegro hand twice from the same seed and
candidates: with the hand file's hard contacts (solimp 0.99 / 0.999, as shipped) and with MuJoCo's default impedance
(0.9 / 0.95) on every geom, and prints per object how many candidates passed the hold. With soft contacts a pinched
object creeps out of the fingertips under its own weight; only grasps that press it against the palm hold.

    python scripts/pinch_contacts.py --objects cube_45,cuboid_80x50x35,cylinder_r25_h60 --wrist palm_down \
        --candidates 1024 --hold-s 10 --seed 0
"""

from __future__ import annotations

import argparse
import json

from dexgen.sim import grasps
from dexgen.sim.grasps import GraspGenConfig, generate_grasps
from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.objects import resolve_objects


class _SoftContacts(HandBatch):
    """A HandBatch whose models have MuJoCo's default contact impedance on every geom."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for m in self.models:
            m.geom_solimp[:, :2] = (0.9, 0.95)
        self.models_changed()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", default="cube_45,cuboid_80x50x35,cylinder_r25_h60")
    ap.add_argument("--wrist", default="palm_down")
    ap.add_argument("--candidates", type=int, default=1024)
    ap.add_argument("--hold-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    cfg = GraspGenConfig(candidates=args.candidates, keep=args.candidates, hold_s=args.hold_s, pinch_share=1.0)
    out = {}
    for obj in resolve_objects(args.objects):
        row = {}
        for name, batch in (("hard", HandBatch), ("default", _SoftContacts)):
            grasps.HandBatch = batch
            try:
                cache = generate_grasps(obj, wrist=args.wrist, hand="allegro", seed=args.seed, config=cfg,
                                        num_threads=args.threads)  # fmt: skip
            finally:
                grasps.HandBatch = HandBatch
            row[name] = cache.meta["kinds"]["pinch"]["passed"]
        out[obj.name] = row
        print(obj.name, row, flush=True)
    print(json.dumps({"candidates": args.candidates, "hold_s": args.hold_s, "seed": args.seed, "passed": out}))


if __name__ == "__main__":
    main()
