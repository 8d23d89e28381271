"""Grasp cache: stable initial grasps per object and wrist orientation, generated in simulation.

A grasp is a hand at rest around an object: joint positions, joint targets and the object pose (palm frame).
Two kinds are sampled:

- *wrap*: the object rests on the palm and random targets curl the digits over it; most press it against the palm,
  where it can roll but not turn about an axis parallel to the palm.
- *pinch*: the thumb opposes one to three fingers across an object held away from the palm. The digits start a few
  millimetres off the object's surface (placed there by fingertip IK) and their targets lie inside it along the
  surface normal, so they squeeze the object between them rather than pull it toward the palm.

Generation settles each candidate for ``settle_s`` and keeps the grasps whose object stays in the hand (and barely
moves) for ``hold_s`` more with the targets held fixed, has stopped sliding by the end of that hold
(``max_creep``), and has at least ``min_contacts`` digits touching it; a pinch grasp must also keep the object off
the palm for the whole hold. Candidates are simulated in batches until enough have passed; one that fails during
the hold stops there. Files are ``assets/grasps/<wrist>/<object>.npz``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dexgen.checks import check_number
from dexgen.files import atomic_path
from dexgen.provenance import revision
from dexgen.sim import constants as C
from dexgen.sim.hand import wrist_quat
from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.ik import FingertipIK
from dexgen.sim.objects import ObjectSpec
from dexgen.sim.rotations import axis_angle_quat, quat_mul, quat_to_mat, quat_to_rotvec
from dexgen.sim.termination import DropConfig, dropped

_ARRAYS = {"hand_q": (C.NUM_JOINTS,), "targets": (C.NUM_JOINTS,), "object_pos": (3,), "object_quat": (4,)}


class GraspCacheError(ValueError):
    """A grasp cache file is missing, unreadable or malformed."""


@dataclass
class GraspCache:
    """Cached grasps of one object in one wrist orientation (G entries)."""

    object_name: str
    wrist: str
    hand_q: np.ndarray
    """(G, 16) joint positions, radians."""
    targets: np.ndarray
    """(G, 16) joint position targets, radians."""
    object_pos: np.ndarray
    """(G, 3) object centre, metres, palm frame."""
    object_quat: np.ndarray
    """(G, 4) object orientation (w, x, y, z), palm frame."""
    meta: dict = field(default_factory=dict)
    """How the cache was made: command, seed, code revision, generation statistics."""
    hand: str = C.DEFAULT_HAND
    """The hand model the grasps were made with (``constants.HANDS``)."""

    def __len__(self) -> int:
        return len(self.hand_q)

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file renamed into place), so a crash never leaves half a file."""
        with atomic_path(path, suffix=".tmp.npz") as tmp:
            np.savez_compressed(
                tmp,
                hand_q=self.hand_q,
                targets=self.targets,
                object_pos=self.object_pos,
                object_quat=self.object_quat,
                meta=np.array(
                    json.dumps({"object": self.object_name, "wrist": self.wrist, "hand": self.hand, **self.meta})
                ),
            )


def cache_path(object_name: str, wrist: str, *, root: Path | None = None, hand: str = C.DEFAULT_HAND) -> Path:
    """Where the cache of ``object_name`` in ``wrist`` orientation lives (``root`` None: the shipped caches of
    ``hand``)."""
    return (root or C.GRASP_DIRS[hand]) / wrist / f"{object_name}.npz"


def load_grasps(object_name: str, wrist: str, *, root: Path | None = None, hand: str = C.DEFAULT_HAND) -> GraspCache:
    """Load and validate a cache of ``hand``; a GraspCacheError with a one-line reason otherwise (a ValueError for
    an unknown wrist orientation)."""
    wrist_quat(wrist)
    path = cache_path(object_name, wrist, root=root, hand=hand)
    if not path.exists():
        hand_flag = "" if hand == C.DEFAULT_HAND else f" --hand {hand}"
        raise GraspCacheError(
            f"no grasp cache for object {object_name!r} ({wrist}, {hand} hand) at {path}; "
            f"create it with: dexgen grasps generate --objects {object_name} --wrist {wrist}{hand_flag}"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k], dtype=np.float64) for k in _ARRAYS}
            meta = json.loads(str(f["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise GraspCacheError(f"corrupt grasp cache {path}: {type(e).__name__}: {e}") from None
    count = len(arrays["hand_q"])
    for name, shape in _ARRAYS.items():
        a = arrays[name]
        if a.shape != (count, *shape):
            raise GraspCacheError(f"corrupt grasp cache {path}: {name} has shape {a.shape}, expected {(count, *shape)}")
        if not np.isfinite(a).all():
            raise GraspCacheError(f"corrupt grasp cache {path}: {name} holds non-finite values")
    if count == 0:
        raise GraspCacheError(f"grasp cache {path} is empty")
    if meta.get("object") != object_name or meta.get("wrist") != wrist:
        raise GraspCacheError(f"grasp cache {path} was made for {meta.get('object')!r} ({meta.get('wrist')})")
    made_for = meta.get("hand", C.DEFAULT_HAND)  # caches from before the hand was recorded are the default hand's
    if made_for != hand:
        raise GraspCacheError(f"grasp cache {path} was made for the {made_for} hand, not {hand}")
    meta = {k: v for k, v in meta.items() if k not in ("object", "wrist", "hand")}
    return GraspCache(object_name, wrist, meta=meta, hand=hand, **arrays)


# ---- generation ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraspGenConfig:
    """How grasps are sampled and filtered."""

    candidates: int = 256
    """Most candidate grasps simulated per object and kind (sampling stops once that kind's share of ``keep``
    has passed)."""
    keep: int = 64
    """Grasps kept per object (the first that pass, in candidate order)."""
    settle_s: float = 1.0
    """Seconds the fingers close on the object before the grasp is recorded."""
    hold_s: float = 2.0
    """Seconds the recorded grasp must then hold with fixed targets."""
    max_drift: float = 0.015
    """Largest object displacement during the hold, metres."""
    max_turn: float = 0.3
    """Largest object rotation during the hold, radians."""
    max_creep: float = 0.001
    """Largest object displacement during the last second of the hold, metres. An object still sliding then tends
    to leave the hand later: of the palm-down and sideways grasps kept without this test (hold 6 s), 29 and 48 fell
    within 10 s, and a 1 mm limit over 2.5-3.5 s would have caught 26 and 48 of them."""
    min_contacts: int = 2
    """Fewest fingers (thumb included) touching the object when the grasp is recorded."""
    pinch_share: float = 0.0
    """Share of the kept grasps that are pinch grasps (the object held away from the palm); the rest are wrap
    grasps. Each kind has its own budget of ``candidates``. The shipped caches are wrap grasps only: training the
    palm-down rotation expert from half pinch starts did not turn it faster about palm x / y (docs/results.md)."""

    def __post_init__(self) -> None:
        check_number("pinch_share", self.pinch_share, ge=0.0, le=1.0)


def _resting_orientations(obj: ObjectSpec, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random orientations (n, 4), palm frame, with a principal axis along the palm normal; and the object's half
    extent (n,) along that normal, metres."""
    axes = [0, 1, 2]
    if obj.shape in ("cylinder", "capsule") and obj.half_extent(2) > 2.5 * obj.half_extent(0):
        axes = [0, 1]  # long thin objects lie down
    up = rng.choice(axes, size=n)
    s = np.sqrt(0.5)
    align = {0: (s, 0.0, -s, 0.0), 1: (s, s, 0.0, 0.0), 2: (1.0, 0.0, 0.0, 0.0)}
    q = np.array([align[int(k)] for k in up])
    flip = np.where(rng.random(n) < 0.5, np.pi, 0.0)
    q = quat_mul(axis_angle_quat(np.array([1.0, 0.0, 0.0]), flip), q)
    yaw = rng.uniform(-np.pi, np.pi, n)
    q = quat_mul(axis_angle_quat(np.array([0.0, 0.0, 1.0]), yaw), q)
    half = np.array([obj.half_extent(int(k)) for k in up])
    return q, half


def _closing_targets(rng: np.random.Generator, n: int, joint_range: np.ndarray, hand: str) -> np.ndarray:
    """(n, 16) random finger targets that curl the fingers and thumb of ``hand`` over the palm, radians."""
    lo, hi = (np.array(x) for x in C.GRASP_CLOSING[hand])
    return np.clip(rng.uniform(lo, hi, (n, C.NUM_JOINTS)), joint_range[:, 0], joint_range[:, 1])


_BATCH = 1024
"""Candidates simulated together; sampling goes on batch by batch until ``keep`` grasps passed or the budget is
spent (memory grows with the batch: about 2 GB at 1,024)."""


def generate_grasps(
    obj: ObjectSpec,
    *,
    wrist: str = "palm_up",
    hand: str = C.DEFAULT_HAND,
    seed: int = 0,
    config: GraspGenConfig = GraspGenConfig(),
    num_threads: int = 0,
    drop: DropConfig = DropConfig(),
) -> GraspCache:
    """Sample, settle and filter grasps of ``obj``; returns the kept ones (possibly fewer than ``config.keep``).

    Candidates are drawn in batches until ``config.keep`` have passed or ``config.candidates`` were simulated; a
    candidate that fails a test during the hold is not simulated further, so a long hold costs little more than
    the settling (most candidates fail early)."""
    rng = np.random.default_rng(seed)
    size = min(config.candidates, _BATCH)
    sims = HandBatch([obj] * size, wrist=wrist, hand=hand, num_threads=num_threads)
    dt = sims.models[0].opt.timestep
    pinch_keep = round(config.keep * config.pinch_share)
    found: list[tuple[np.ndarray, ...]] = []
    kinds = {}
    for kind, want in (("wrap", config.keep - pinch_keep), ("pinch", pinch_keep)):
        simulated = passed = 0
        while simulated < config.candidates and passed < want:
            n = min(size, config.candidates - simulated)
            try_candidates = _try_candidates if kind == "wrap" else _try_pinch_candidates
            ok, rec = try_candidates(sims, obj, rng, n, wrist, hand, config, drop, dt)
            found.append(tuple(a[ok][: want - passed] for a in rec))
            simulated += n
            passed += int(ok.sum())
        kinds[kind] = {"candidates": simulated, "passed": passed, "kept": min(passed, want)}
    q, targets, pos, quat = (np.concatenate(a) for a in zip(*found))
    meta = {
        "seed": seed,
        "revision": revision(),
        "config": asdict(config),
        "candidates": sum(v["candidates"] for v in kinds.values()),
        "passed": sum(v["passed"] for v in kinds.values()),
        "kept": len(q),
        "kinds": kinds,
    }
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    return GraspCache(obj.name, wrist, q, targets, pos, quat, meta=meta, hand=hand)


def _try_candidates(
    sims: HandBatch,
    obj: ObjectSpec,
    rng: np.random.Generator,
    n: int,
    wrist: str,
    hand: str,
    config: GraspGenConfig,
    drop: DropConfig,
    dt: float,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Settle and hold ``n`` new candidates in the first ``n`` simulations of ``sims``.

    Returns (n,) bool which passed, and their recorded (hand_q (n, 16), targets (n, 16), object_pos (n, 3),
    object_quat (n, 4)), palm frame."""
    ids = np.arange(n)
    quat, half = _resting_orientations(obj, rng, n)
    pos = np.column_stack(
        (rng.uniform(-0.015, 0.03, n), rng.uniform(-0.015, 0.015, n), C.PALM_HALF_THICKNESS + half + 0.001)
    )
    targets = _closing_targets(rng, n, sims.index.joint_range, hand)
    open_q = np.tile(np.array(C.OPEN_POSE), (n, 1))
    # Palm up, gravity seats the object on the palm while the fingers close; in other orientations the fingers
    # close without gravity, which is switched on for the hold test.
    gravity_during_settle = wrist == "palm_up"
    if not gravity_during_settle:
        for m in sims.models:
            m.opt.gravity[:] = 0.0
        sims.models_changed()
    sims.set_state(ids, hand_q=open_q, targets=targets, object_pos=pos, object_quat=quat)
    sims.step(round(config.settle_s / dt), ids)
    if not gravity_during_settle:
        for m, base in zip(sims.models, sims.base_models):
            m.opt.gravity[:] = base.opt.gravity
        sims.models_changed()
    rec_q = sims.hand_q[:n].copy()
    rec_pos, rec_quat = (a[:n].copy() for a in sims.object_pose())
    contacts = np.array([sims.fingers_touching_object(i).sum() for i in range(n)])
    ok = (contacts >= config.min_contacts) & ~dropped(rec_pos, drop)
    ok &= _hold(sims, n, ok, rec_pos, rec_quat, config, drop, dt, off_palm=False)
    return ok, (rec_q, targets, rec_pos, rec_quat)


def _hold(sims: HandBatch, n: int, ok: np.ndarray, rec_pos: np.ndarray, rec_quat: np.ndarray, config: GraspGenConfig,
          drop: DropConfig, dt: float, *, off_palm: bool) -> np.ndarray:  # fmt: skip
    """Hold the first ``n`` simulations of ``sims`` (those with ``ok``) for ``config.hold_s`` with their targets
    fixed; (n,) bool: the ones that pass the hold's tests (with ``off_palm``, the palm never touching the object
    at the end of a 0.5 s chunk too)."""
    ok = ok.copy()
    conj = rec_quat * np.array([1, -1, -1, -1])

    def still_ok(live: np.ndarray) -> np.ndarray:  # drop, drift and turn so far (and the palm)
        end_pos, end_quat = (a[:n] for a in sims.object_pose())
        drift = np.linalg.norm(end_pos - rec_pos, axis=-1)
        turn = np.linalg.norm(quat_to_rotvec(quat_mul(end_quat, conj)), axis=-1)
        good = ~dropped(end_pos, drop) & (drift < config.max_drift) & (turn < config.max_turn)
        if off_palm:
            good[live] &= [not sims.palm_touches_object(int(i)) for i in live]
        return good

    # hold in 0.5 s chunks so an object that leaves and comes back is still caught; a failed candidate stops
    chunks = max(1, round(config.hold_s / 0.5))
    creep_from = rec_pos
    for k in range(chunks):
        if k == chunks - 2:  # the start of the last second (or of the whole hold if it is shorter)
            creep_from = sims.object_pose()[0][:n].copy()
        live = np.flatnonzero(ok)
        if live.size == 0:
            break
        sims.step(round(0.5 / dt), live)
        ok &= still_ok(live)
    return ok & (np.linalg.norm(sims.object_pose()[0][:n] - creep_from, axis=-1) < config.max_creep)


_PINCH_FINGERS = ((0,), (1,), (0, 1), (1, 2), (0, 1, 2))
"""The fingers (indices into ``constants.FINGERS``) that oppose the thumb in a pinch candidate, drawn uniformly."""


def _pinch_candidates(obj: ObjectSpec, rng: np.random.Generator, n: int, hand: str, ik: FingertipIK,
                      tip_radius: float) -> tuple[np.ndarray, ...]:  # fmt: skip
    """``n`` pinch candidates: start joints (n, 16) with the chosen digits' tips 7 mm off the object's surface and
    the others open, squeezing targets (n, 16), object centres (n, 3) and orientations (n, 4) (palm frame), and
    (n,) bool whether IK reached every start position within 3 mm.

    Random closing targets give a thumb and finger layout; the object, randomly oriented, is centred between the
    thumb tip and the opposing fingertips, and each chosen digit is placed on the surface where the ray from the
    centre toward it leaves the object. Its target lies ``depth`` (2-5 cm, random per candidate) inside the
    surface along the normal there: a squeeze of up to the servo's torque cap."""
    q0 = _closing_targets(rng, n, ik.joint_range, hand)
    chosen = np.zeros((n, C.NUM_FINGERTIPS), dtype=bool)
    chosen[:, -1] = True  # the thumb
    for i, pick in enumerate(rng.integers(len(_PINCH_FINGERS), size=n)):
        chosen[i, list(_PINCH_FINGERS[pick])] = True
    tips = np.stack([ik.forward(q) for q in q0])
    fingers = (tips[:, :-1] * chosen[:, :-1, None]).sum(1) / chosen[:, :-1].sum(1, keepdims=True)
    centre = 0.5 * (fingers + tips[:, -1])
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    rot = quat_to_mat(quat)  # object -> palm frame
    depth = rng.uniform(0.02, 0.05, n)
    start, squeeze = np.empty((n, C.NUM_FINGERTIPS, 3)), np.empty((n, C.NUM_FINGERTIPS, 3))
    for f in range(C.NUM_FINGERTIPS):
        toward = tips[:, f] - centre
        toward /= np.linalg.norm(toward, axis=-1, keepdims=True)
        point, normal = obj.surface_along(np.einsum("nji,nj->ni", rot, toward))
        point, normal = centre + np.einsum("nij,nj->ni", rot, point), np.einsum("nij,nj->ni", rot, normal)
        start[:, f] = point + (tip_radius + 0.007) * normal
        squeeze[:, f] = point + (tip_radius - depth[:, None]) * normal
    q_start = ik.solve_batch(q0, start, mask=chosen)
    open_q = np.broadcast_to(np.array(C.OPEN_POSE), q_start.shape)
    per_joint = np.repeat(chosen, C.NUM_JOINTS // C.NUM_FINGERTIPS, axis=1)
    q_start = np.where(per_joint, q_start, open_q)
    miss = np.stack([np.linalg.norm(ik.forward(q) - s, axis=-1) for q, s in zip(q_start, start)])
    reached = ((miss < 0.003) | ~chosen).all(axis=1)
    targets = np.where(per_joint, ik.solve_batch(q_start, squeeze, mask=chosen), open_q)
    return q_start, targets, centre, quat, reached


def _try_pinch_candidates(
    sims: HandBatch,
    obj: ObjectSpec,
    rng: np.random.Generator,
    n: int,
    wrist: str,
    hand: str,
    config: GraspGenConfig,
    drop: DropConfig,
    dt: float,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``_try_candidates`` for pinch grasps (same returns).

    The digits close for ``settle_s`` on an object 10^4 times heavier and without gravity, so it stays where it was
    placed; then mass and gravity come back and the grasp settles ``settle_s`` more before it is recorded. A
    candidate passes with the thumb and a finger on the object, the palm off it, and the hold's tests."""
    ik = FingertipIK(hand=hand, iterations=30)
    tip_radius = float(sims.models[0].geom_size[sims.index.fingertip_geoms[0], 0])
    q_start, targets, pos, quat, reached = _pinch_candidates(obj, rng, n, hand, ik, tip_radius)
    ids = np.arange(n)
    body = sims.index.object_body
    for m in sims.models:
        m.opt.gravity[:] = 0.0
        m.body_mass[body] *= 1e4
        m.body_inertia[body] *= 1e4
    sims.models_changed()
    sims.set_state(ids, hand_q=q_start, targets=targets, object_pos=pos, object_quat=quat)
    # a digit or the palm already on the object at the start would push it, not squeeze it
    clear = np.array([not (sims.fingers_touching_object(i).any() or sims.palm_touches_object(i)) for i in ids])
    ok = reached & clear
    sims.step(round(config.settle_s / dt), ids)
    for m, base in zip(sims.models, sims.base_models):
        m.opt.gravity[:] = base.opt.gravity
        m.body_mass[body] = base.body_mass[body]
        m.body_inertia[body] = base.body_inertia[body]
    sims.models_changed()
    sims.step(round(config.settle_s / dt), ids)
    rec_q = sims.hand_q[:n].copy()
    rec_pos, rec_quat = (a[:n].copy() for a in sims.object_pose())
    touching = np.array([sims.fingers_touching_object(i) for i in ids])
    on_palm = np.array([sims.palm_touches_object(i) for i in ids])
    ok &= touching[:, -1] & (touching.sum(1) >= config.min_contacts) & ~on_palm & ~dropped(rec_pos, drop)
    ok &= _hold(sims, n, ok, rec_pos, rec_quat, config, drop, dt, off_palm=True)
    return ok, (rec_q, targets, rec_pos, rec_quat)


def check_grasps(
    caches: list[GraspCache],
    *,
    objects: dict[str, ObjectSpec],
    seconds: float = 10.0,
    num_threads: int = 0,
    drop: DropConfig = DropConfig(),
) -> dict:
    """Hold every cached grasp for ``seconds`` with fixed targets and nominal physics.

    Returns {"hold_rate", "grasps", "held", "palm_contact", "per_object": {name: {"grasps", "held", "hold_rate",
    "on_palm", "palm_contact"}}}; ``on_palm`` counts the grasps whose object touches the palm after the first 0.5 s
    and ``palm_contact`` is their share (an object pressed against the palm can roll there, but cannot turn about
    an axis parallel to it).
    """
    by_wrist: dict[str, list[GraspCache]] = {}
    for c in caches:
        by_wrist.setdefault(c.wrist, []).append(c)
    if len({c.hand for c in caches}) > 1:
        raise ValueError("check_grasps: the caches are of different hands; check each hand's on its own")
    per_object: dict[str, dict] = {}
    for wrist, group in by_wrist.items():
        objs = [objects[c.object_name] for c in group for _ in range(len(c))]
        sims = HandBatch(objs, wrist=wrist, hand=group[0].hand, num_threads=num_threads)
        cat = {k: np.concatenate([getattr(c, k) for c in group]) for k in _ARRAYS}
        sims.set_state(np.arange(len(objs)), **cat)
        held = np.ones(len(objs), dtype=bool)
        dt = sims.models[0].opt.timestep
        for k in range(max(1, round(seconds / 0.5))):
            sims.step(round(0.5 / dt))
            held &= ~dropped(sims.object_pose()[0], drop)
            if k == 0:
                on_palm = np.array([sims.palm_touches_object(i) for i in range(len(objs))])
        start = 0
        for c in group:
            h, p = held[start : start + len(c)], on_palm[start : start + len(c)]
            start += len(c)
            key = c.object_name if len(by_wrist) == 1 else f"{c.object_name}@{wrist}"
            per_object[key] = {"grasps": len(c), "held": int(h.sum()), "hold_rate": float(h.mean()),
                               "on_palm": int(p.sum()), "palm_contact": float(p.mean())}  # fmt: skip
    total = sum(v["grasps"] for v in per_object.values())
    held_total = sum(v["held"] for v in per_object.values())
    on_palm_total = sum(v["on_palm"] for v in per_object.values())
    return {
        "hold_rate": held_total / max(total, 1),
        "grasps": total,
        "held": held_total,
        "palm_contact": on_palm_total / max(total, 1),
        "seconds": seconds,
        "per_object": per_object,
    }
