import numpy as np

from dexgen.sim import constants as C
from dexgen.sim.termination import DropConfig, dropped


def test_drop_rules():
    cfg = DropConfig(max_distance=0.1, min_height=0.0)
    centre = np.array(C.GRASP_CENTRE)
    pos = np.stack([centre, centre + [0.11, 0, 0], [centre[0], centre[1], -0.01]])
    np.testing.assert_array_equal(dropped(pos, cfg), [False, True, True])
