import numpy as np
import pytest

from dexgen.sim import grasps
from dexgen.sim.grasps import (
    GraspCache,
    GraspCacheError,
    GraspGenConfig,
    cache_path,
    check_grasps,
    generate_grasps,
    load_grasps,
)
from dexgen.sim.objects import TRAIN_OBJECTS, get_object


def _cache(n=3):
    rng = np.random.default_rng(0)
    quat = rng.normal(size=(n, 4))
    return GraspCache(
        "cube_45", "palm_up", rng.normal(size=(n, 16)), rng.normal(size=(n, 16)), rng.normal(size=(n, 3)),
        quat / np.linalg.norm(quat, axis=1, keepdims=True), meta={"seed": 0},
    )  # fmt: skip


def test_save_load_round_trip(tmp_path):
    c = _cache()
    c.save(cache_path("cube_45", "palm_up", root=tmp_path))
    d = load_grasps("cube_45", "palm_up", root=tmp_path)
    for k in ("hand_q", "targets", "object_pos", "object_quat"):
        np.testing.assert_array_equal(getattr(c, k), getattr(d, k))
    assert d.meta == {"seed": 0}
    assert not list(tmp_path.rglob("*.tmp.npz"))


def test_missing_corrupt_and_malformed_files(tmp_path):
    with pytest.raises(GraspCacheError, match="no grasp cache for object 'cube_45'.*dexgen grasps generate"):
        load_grasps("cube_45", "palm_up", root=tmp_path)
    path = cache_path("cube_45", "palm_up", root=tmp_path)
    _cache().save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GraspCacheError, match="corrupt grasp cache"):
        load_grasps("cube_45", "palm_up", root=tmp_path)
    bad = _cache()
    bad.hand_q = bad.hand_q[:, :15]
    bad.save(path)
    with pytest.raises(GraspCacheError, match="hand_q has shape"):
        load_grasps("cube_45", "palm_up", root=tmp_path)
    nan = _cache()
    nan.targets[0, 0] = np.nan
    nan.save(path)
    with pytest.raises(GraspCacheError, match="non-finite"):
        load_grasps("cube_45", "palm_up", root=tmp_path)


def test_shipped_cache_covers_every_object():
    for obj in TRAIN_OBJECTS:
        cache = load_grasps(obj.name, "palm_up")
        assert len(cache) >= 8, obj.name
        assert "revision" in cache.meta and "command" in cache.meta


@pytest.mark.parametrize("wrist", ["palm_up", "palm_down", "sideways"])
def test_shipped_allegro_caches_cover_every_object(wrist):
    from dexgen.sim.objects import resolve_objects

    for obj in resolve_objects("all"):
        cache = load_grasps(obj.name, wrist, hand="allegro")  # checks shapes, finiteness, object, wrist and hand
        assert len(cache) >= 1, obj.name
        assert cache.meta["config"]["hold_s"] == 20.0 and "command" in cache.meta, obj.name


def test_generation_and_check_on_a_tiny_budget():
    obj = get_object("cube_60")
    cfg = GraspGenConfig(candidates=48, keep=4, settle_s=0.5, hold_s=0.5)
    a = generate_grasps(obj, seed=1, config=cfg, num_threads=1)
    b = generate_grasps(obj, seed=1, config=cfg, num_threads=2)
    assert 0 < len(a) <= 4
    np.testing.assert_array_equal(a.hand_q, b.hand_q)  # deterministic at any thread count
    report = check_grasps([a], objects={obj.name: obj}, seconds=1.0, num_threads=1)
    assert report["grasps"] == len(a)
    assert report["hold_rate"] == pytest.approx(report["per_object"]["cube_60"]["held"] / len(a))


def test_creep_limit_drops_grasps_still_sliding_at_the_end_of_the_hold():
    obj = get_object("cube_60")
    base = dict(candidates=48, keep=48, settle_s=0.5, hold_s=1.0, pinch_share=0.0)
    loose = generate_grasps(obj, wrist="palm_down", seed=1, config=GraspGenConfig(**base, max_creep=np.inf),
                            num_threads=1)  # fmt: skip
    strict = generate_grasps(obj, wrist="palm_down", seed=1, config=GraspGenConfig(**base, max_creep=0.001),
                             num_threads=1)  # fmt: skip
    assert 0 < strict.meta["passed"] < loose.meta["passed"]
    # the strict grasps are the loose ones that stopped sliding, in the same candidate order
    kept = {tuple(q) for q in np.round(loose.hand_q, 9)}
    assert all(tuple(q) in kept for q in np.round(strict.hand_q, 9))
    assert strict.meta["config"]["max_creep"] == 0.001


def test_sampling_goes_batch_by_batch_and_stops_once_enough_passed(monkeypatch):
    obj = get_object("cube_60")
    monkeypatch.setattr(grasps, "_BATCH", 16)
    cfg = GraspGenConfig(candidates=160, keep=2, settle_s=0.5, hold_s=0.5, pinch_share=0.0)
    cache = generate_grasps(obj, seed=1, config=cfg, num_threads=1)
    simulated = cache.meta["candidates"]
    assert simulated % 16 == 0 and simulated < 160  # stopped early, whole batches
    assert cache.meta["passed"] >= 2 and len(cache) == 2
    # a budget that is not a multiple of the batch is spent exactly
    cfg = GraspGenConfig(candidates=20, keep=64, settle_s=0.5, hold_s=0.5, pinch_share=0.0)
    few = generate_grasps(obj, seed=1, num_threads=1, config=cfg)
    assert few.meta["candidates"] == 20 and len(few) == few.meta["passed"] <= 20


def test_pinch_grasps_hold_the_object_between_the_digits_away_from_the_palm():
    obj = get_object("cube_45")
    cfg = GraspGenConfig(candidates=256, keep=8, settle_s=0.5, hold_s=1.0, pinch_share=0.5)
    cache = generate_grasps(obj, wrist="palm_down", hand="allegro", seed=0, config=cfg, num_threads=1)
    kinds = cache.meta["kinds"]
    assert kinds["wrap"]["kept"] == 4 and kinds["pinch"]["kept"] >= 1
    assert len(cache) == kinds["wrap"]["kept"] + kinds["pinch"]["kept"]
    pinch = GraspCache(obj.name, "palm_down", *(getattr(cache, k)[4:] for k in ("hand_q", "targets", "object_pos",
                       "object_quat")), hand="allegro")  # fmt: skip
    report = check_grasps([pinch], objects={obj.name: obj}, seconds=1.0, num_threads=1)
    assert report["palm_contact"] == 0.0 and report["hold_rate"] > 0.5
    wrap = GraspCache(obj.name, "palm_down", *(getattr(cache, k)[:4] for k in ("hand_q", "targets", "object_pos",
                      "object_quat")), hand="allegro")  # fmt: skip
    assert check_grasps([wrap], objects={obj.name: obj}, seconds=0.5, num_threads=1)["palm_contact"] > 0.0


def test_palm_contact_tells_an_object_on_the_palm_from_one_above_it():
    from dexgen.sim import constants as C
    from dexgen.sim.hand_batch import HandBatch

    obj = get_object("cube_60")
    sims = HandBatch([obj, obj], wrist="palm_up", num_threads=1)
    half = obj.half_extent(2)
    lying = np.array(
        [[0.0, 0.0, C.PALM_HALF_THICKNESS + half - 0.0005], [0.0, 0.0, C.PALM_HALF_THICKNESS + half + 0.05]]
    )
    open_q = np.tile(np.array(C.OPEN_POSE), (2, 1))
    sims.set_state(
        np.arange(2), hand_q=open_q, targets=open_q, object_pos=lying, object_quat=np.tile([1.0, 0, 0, 0], (2, 1))
    )
    sims.step(2)
    assert sims.palm_touches_object(0) and not sims.palm_touches_object(1)


def test_check_reports_the_share_of_grasps_on_the_palm():
    obj = get_object("cube_60")
    cache = load_grasps(obj.name, "palm_up")
    report = check_grasps([cache], objects={obj.name: obj}, seconds=0.5, num_threads=1)
    one = report["per_object"]["cube_60"]
    assert report["palm_contact"] == one["palm_contact"] == one["on_palm"] / len(cache)
    assert one["on_palm"] > len(cache) / 2  # palm up, the object rests on the palm


def test_pinch_candidates_put_the_thumb_and_a_finger_just_off_the_surface_and_aim_inside():
    from dexgen.sim.grasps import _pinch_candidates
    from dexgen.sim.ik import FingertipIK
    from dexgen.sim.rotations import quat_to_mat

    obj = get_object("cuboid_60x40x30")
    ik = FingertipIK(hand="allegro", iterations=30)
    q, targets, pos, quat, reached = _pinch_candidates(obj, np.random.default_rng(0), 32, "allegro", ik, 0.012)
    assert reached.sum() >= 8
    for i in np.flatnonzero(reached):
        to_object = quat_to_mat(quat[i])  # object -> palm frame; rows of its transpose map palm to object
        start = obj.signed_distance((ik.forward(q[i]) - pos[i]) @ to_object)
        aim = obj.signed_distance((ik.forward(targets[i]) - pos[i]) @ to_object)
        assert abs(start[3] - 0.019) < 0.003  # the thumb: tip radius + 7 mm off the surface
        assert (np.abs(start[:3] - 0.019) < 0.003).any()  # at least one finger opposes it
        assert aim[3] < 0.012  # at its target the thumb tip (radius 12 mm) would be inside the object: it squeezes


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_pinch_share_outside_0_1_is_refused(share):
    with pytest.raises(ValueError, match="pinch_share must be finite and >= 0 and <= 1"):
        GraspGenConfig(pinch_share=share)
