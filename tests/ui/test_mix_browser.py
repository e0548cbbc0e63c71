"""ui/mix.py in Chromium: page 3's pictures of x_t are drawn by the browser from x_0, eps and the weights of
eq. 4, at the slider's position, the moment a key moves it; each is the picture the server would make
(tensor_to_image of q_sample, computed here independently of the page), to one grey level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.data.images import image_to_tensor, tensor_to_image
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.process.forward import q_sample
from diffusion_core.process.schedules import make_schedule
from tests.conftest import assert_no_exception, open_page, wait_idle
from ui.sidebar import DEFAULT_SEED

PICTURES = ".st-key-closed_form_pictures canvas"
# Every canvas's pixels (RGB, row-major) and its caption, read in the page.
READ = """(sel) => [...document.querySelectorAll(sel)].map(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const rgb = []; for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]);
  return {w: c.width, h: c.height, rgb, caption: c.nextElementSibling.textContent}; })"""


def expected_pictures(t: int) -> list[np.ndarray]:
    """x_t of the page's default picture, linear and cosine schedules (T = 1000), the page's one draw of eps."""
    x0 = image_to_tensor(load_sample_image(list_sample_images()[3], None))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(DEFAULT_SEED))
    return [tensor_to_image(q_sample(x0, t, eps, make_schedule(kind, 1000))) for kind in ("linear", "cosine")]


def assert_same_picture(shown: dict, expected: np.ndarray) -> None:
    rgb = expected if expected.ndim == 3 else np.repeat(expected[:, :, None], 3, axis=2)
    got = np.array(shown["rgb"], dtype=np.int16).reshape(shown["h"], shown["w"], 3)
    diff = np.abs(got - rgb.astype(np.int16))
    assert diff.max() <= 1, diff.max()  # a value near a rounding boundary may round the other way (ui/mix.py)
    assert (diff == 0).mean() > 0.98, (diff == 0).mean()


@pytest.mark.parametrize("lang, caption", [("en", "xₜ at t = {t}, linear schedule"), ("vi", "xₜ tại t = {t}, lịch tuyến tính")])
def test_the_pictures_follow_the_key_press_exactly(browser, app_url, lang, caption):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    open_page(pg, app_url, "Closed_form", lang)
    slider = pg.locator(".st-key-closed_form_t input[type=range]")
    slider.wait_for(timeout=60000)
    pg.wait_for_function(f"document.querySelectorAll('{PICTURES}').length == 2", timeout=60000)
    wait_idle(pg)
    start = int(slider.get_attribute("aria-valuetext"))
    shown = pg.evaluate(READ, PICTURES)
    for picture, expected in zip(shown, expected_pictures(start)):
        assert_same_picture(picture, expected)
    assert shown[0]["caption"].startswith(caption.format(t=start) + "\n")
    # A key press redraws both pictures by the next frame, before any message from the server is handled.
    drawn = pg.evaluate("""([sel, read]) => { const input = document.querySelector('.st-key-closed_form_t input[type=range]');
        input.focus(); input.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
        return new Promise(r => requestAnimationFrame(() => r([Number(input.value), eval(read)(sel)]))); }""", [PICTURES, READ])
    assert drawn[0] == start + 1
    for picture, expected in zip(drawn[1], expected_pictures(start + 1)):
        assert_same_picture(picture, expected)
    assert drawn[1][1]["caption"].startswith("xₜ") and f"t = {start + 1}" in drawn[1][1]["caption"]
    s, sub = make_schedule("cosine", 1000), str(start + 1).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
    assert drawn[1][1]["caption"].split("\n")[1] == (  # eq. 4 with this t's numbers, under its picture
        f"x{sub} = {float(s.sqrt_alpha_bars[start + 1]):.4f} x₀ + {float(s.sqrt_one_minus_alpha_bars[start + 1]):.4f} ε")
    # The server's run after it leaves the pictures as they are (the same element: nothing is sent again).
    wait_idle(pg)
    pg.wait_for_timeout(300)
    after = pg.evaluate(READ, PICTURES)
    assert after[0]["rgb"] == drawn[1][0]["rgb"] and after[0]["caption"].startswith(caption.format(t=start + 1))
    assert_no_exception(pg)
    context.close()
