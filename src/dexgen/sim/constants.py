"""Names and fixed figures of the hand model, in one place (see assets/hand.xml for the kinematics)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"
HAND_XML = ASSETS_DIR / "hand.xml"
GRASP_DIR = ASSETS_DIR / "grasps"
DEFAULT_WRIST = "palm_up"
"""The wrist orientation of shipped experts and models whose names carry none, and of records that predate it."""

FINGERS = ("index", "middle", "ring", "thumb")
JOINT_NAMES = tuple(f"{finger}_{i}" for finger in FINGERS for i in range(4))
ACTUATOR_NAMES = JOINT_NAMES
FINGERTIP_SITES = tuple(f"{finger}_tip" for finger in FINGERS)
FINGERTIP_GEOMS = FINGERTIP_SITES
PALM_BODY = "palm"
OBJECT_BODY = "object"
OBJECT_GEOM = "object"
OBJECT_JOINT = "object"

NUM_JOINTS = len(JOINT_NAMES)
NUM_FINGERTIPS = len(FINGERTIP_SITES)

PALM_HALF_THICKNESS = 0.0204
"""Half thickness of the palm box, metres: the palm surface is the plane z = PALM_HALF_THICKNESS, palm frame."""

GRASP_CENTRE = (0.02, 0.0, 0.055)
"""Nominal centre of the grasp workspace, metres, palm frame (above the palm, between fingers and thumb)."""

OPEN_POSE = (
    0.0, 0.1, 0.1, 0.1,
    0.0, 0.1, 0.1, 0.1,
    0.0, 0.1, 0.1, 0.1,
    0.4, 0.2, 0.1, 0.1,
)  # fmt: skip
"""Joint positions of an open hand, radians, in JOINT_NAMES order."""
