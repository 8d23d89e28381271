import numpy as np

from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.objects import get_object
from dexgen.sim.render import SimRenderer, write_image, write_video


def test_render_frames_to_video_and_image(tmp_path):
    sims = HandBatch([get_object("cube_60")], num_threads=1)
    r = SimRenderer(sims, width=96, height=64)
    a = r.frame()
    sims.step(20)
    b = r.frame()
    r.close()
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert a.std() > 5  # not a blank image
    gif = write_video(tmp_path / "v.gif", [a, b], fps=20)
    mp4 = write_video(tmp_path / "v.mp4", [a, b] * 4, fps=20)
    png = write_image(tmp_path / "f.png", a)
    assert gif.stat().st_size > 0 and mp4.stat().st_size > 0 and png.stat().st_size > 0
