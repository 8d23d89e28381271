"""``dexgen web``: the hand session behind the page, and the page itself in a real headless browser (Debian's
chromium driven by playwright): it shows the hand, a key press turns the object, the assist toggle changes the
method, a second tab watches until the first leaves."""

import os
import re
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from dexgen.teleop.commands import load_recording
from dexgen.teleop.web import HandSession, WebConfig, run_web

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_session_steps_the_hand_with_the_assist_or_raw_ik(tmp_path):
    s = HandSession(WebConfig(object="cube_60", wrist="palm_down", speed=0.5, record_dir=str(tmp_path), seed=1))
    assert s.assist and s.ctrl is not None
    s.set_alpha(0.2)
    assert s.ctrl.config.alpha == 0.2 and s.readout()["alpha"] == 0.2
    s.start_recording()
    for _ in range(10):
        s.step()
    r = s.readout()
    assert r["held_s"] == pytest.approx(0.5) and r["recording"] and r["assist"]
    assert len(s.ctrl.latencies_s) == 10  # the guided controller ran
    path = s.stop_recording()
    rec = load_recording(path)
    assert rec.tips.shape == (11, 4, 3) and rec.dt == pytest.approx(0.05)
    assert not s.set_assist(False)
    for _ in range(5):
        s.step()
    assert len(s.ctrl.latencies_s) == 10  # raw IK now
    s.reset()
    assert s.readout()["held_s"] == 0.0 and s.readout()["turned_deg"] == 0.0


def test_a_wrist_without_a_shipped_model_runs_raw_and_says_why():
    s = HandSession(WebConfig(object="cube_60", wrist="palm_down"))
    s.load("sphere_r30", "sideways")
    assert not s.assist and s.ctrl is None and "no assist for sideways" in s.message
    assert not s.set_assist(True)
    s.step()
    assert s.readout()["object"] == "sphere_r30"


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown object"):
        WebConfig(object="teapot")
    with pytest.raises(ValueError, match="speed"):
        WebConfig(speed=5.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readout(page) -> str:
    return page.locator("text=/Held .* turned/").first.inner_text()


@pytest.mark.skipif(BROWSER is None and not os.environ.get("DEXGEN_REQUIRE_BROWSER"),
                    reason="no chromium here (CI installs it and sets DEXGEN_REQUIRE_BROWSER)")  # fmt: skip
def test_the_page_in_a_browser_shows_the_hand_turns_it_and_toggles_the_assist(tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    result: dict = {}
    cfg = WebConfig(port=port, object="cube_60", wrist="palm_down", seconds=120.0, record_dir=str(tmp_path), seed=0)
    stop = threading.Event()
    server = threading.Thread(target=lambda: result.update(run_web(cfg, stop=stop)), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER,
                                    args=["--enable-unsafe-swiftshader", "--use-angle=swiftshader"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        deadline = time.monotonic() + 30
        while True:  # the server takes a moment to listen
            try:
                page.goto(url)
                break
            except Exception:
                assert time.monotonic() < deadline, "the page did not load"
                time.sleep(0.5)
        page.wait_for_selector("text=You drive.", timeout=30_000)
        page.wait_for_selector("text=/assist on \\(α 0.45\\)/", timeout=60_000)  # the model has loaded
        time.sleep(2.0)
        # the hand is drawn: the palm's and fingers' grey fills part of the view
        shot = np.asarray(_png(page.screenshot(clip={"x": 250, "y": 150, "width": 400, "height": 450})))
        grey = (np.abs(shot[..., :3].astype(int) - [81, 84, 94]).max(-1) < 40).mean()
        assert grey > 0.02, f"the hand covers only {grey:.3%} of the view"
        # a scripted command: four presses of arrow-up ask for 1 rad/s about +z
        for _ in range(4):
            page.keyboard.press("ArrowUp")
        page.wait_for_selector("text=/command 1.00 rad/s/", timeout=5_000)
        turned = []
        for _ in range(40):
            time.sleep(0.5)
            turned.append(float(re.search(r"turned (-?\d+)°", _readout(page)).group(1)))
            if max(turned) >= 20:
                break
        assert max(turned) >= 20, f"the object turned at most {max(turned)}° about +z"
        # the record button writes a replay recording
        page.get_by_role("button", name="Record").click()
        time.sleep(1.0)
        page.get_by_role("button", name="Stop recording").click()
        page.wait_for_selector("text=/saved/", timeout=5_000)
        (saved,) = tmp_path.glob("web_*.npz")
        assert len(load_recording(saved).tips) >= 10
        # a second tab watches
        watcher = browser.new_page(viewport={"width": 1000, "height": 700})
        watcher.goto(url)
        watcher.wait_for_selector("text=Watching: another tab drives.", timeout=30_000)
        assert watcher.get_by_label("Assist (DexGen)").is_disabled()
        # the assist toggle changes the method
        page.get_by_label("Assist (DexGen)").click()
        page.wait_for_selector("text=/assist off \\(raw IK\\)/", timeout=5_000)
        watcher.wait_for_selector("text=/assist off \\(raw IK\\)/", timeout=5_000)
        # the driver leaves: the watcher drives
        page.close()
        watcher.wait_for_selector("text=You drive.", timeout=10_000)
        browser.close()
    stop.set()
    server.join(timeout=30)
    assert result["assist"] is False and result["speed"] == 1.0
    assert result["start_s"] < 30 and result["steps"] > 100


def _png(data: bytes):
    import io

    import imageio.v3 as iio

    return iio.imread(io.BytesIO(data))
