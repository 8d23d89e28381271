import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

# The tests' networks are tiny: one thread is faster than several fighting over two cores, and the same everywhere.
torch.set_num_threads(1)
