"""Page 4, "Your own image": good uploads, every class of bad upload in both languages, the bundled
pictures, the hand-over to the reverse process; then the real upload widget in Chromium."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import LANGS, ROOT, assert_no_exception, open_page, run_page, screenshot, wait_idle
from tests.pages.followed import mixed_header
from diffusion_core.data.images import MAX_UPLOAD_BYTES, ErrorCode, ImageLoadError, read_image
from diffusion_core.process.schedules import make_schedule
from ui.i18n import Translator

PAGE = "pages/4_Your_image.py"
UPLOADER = "your_image_upload"
REVERSE_PAGE = ROOT / "pages" / "7_Reverse_process.py"


def encode(im: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 120, height: int = 90) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * x / (width - 1), 255 * y / (height - 1), 128 + 100 * np.sin(x / 7.0)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def noisy_jpeg() -> bytes:
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)), "JPEG")


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b""))


GOOD = encode(photo())
# (case, file name, bytes, the code the page must explain)
BAD_UPLOADS = [
    ("empty", "empty.png", b"", ErrorCode.EMPTY),
    ("text", "notes.png", b"these are my notes, not a picture\n" * 30, ErrorCode.NOT_IMAGE),
    ("pdf", "paper.jpg", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" * 10, ErrorCode.NOT_IMAGE),
    ("exe", "setup.gif", b"MZ\x90\x00\x03" + bytes(500), ErrorCode.NOT_IMAGE),
    ("truncated-png", "cut.png", GOOD[: len(GOOD) // 2], ErrorCode.TRUNCATED),
    ("truncated-jpeg", "cut.jpg", noisy_jpeg()[:3000], ErrorCode.TRUNCATED),
    ("bomb", "bomb.png", png_claiming(100_000, 100_000), ErrorCode.TOO_MANY_PIXELS),
    ("too-large", "huge.bmp", b"BM" + bytes(MAX_UPLOAD_BYTES), ErrorCode.TOO_LARGE),
]


def upload(at, name: str, data: bytes, mime: str = "image/png"):
    at.file_uploader(key=UPLOADER).set_value((name, data, mime))
    return at.run()


def expected_message(lang: str, data: bytes, code: ErrorCode) -> str:
    with pytest.raises(ImageLoadError) as info:
        read_image(data)
    assert info.value.code is code
    return Translator(lang)(f"your_image.error_{code}", **info.value.fields).strip()


def assert_no_exception_element(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ------------------------------------------------------------------ AppTest
@pytest.mark.parametrize("lang", LANGS)
def test_first_view_shows_a_bundled_picture_diffusing_until_an_upload(lang):
    """Not an empty uploader: the bundled photo goes through the forward process, the page says so, and
    the uploader is there with its limit; an upload then takes the photo's place."""
    at = run_page(PAGE, lang)
    assert_no_exception_element(at)
    tr = Translator(lang)
    assert at.title[0].value == tr("your_image.title")
    assert [i.value for i in at.info] == [tr("your_image.demo_note", name=tr("samples.chelsea")).strip()]
    assert "10 MB" in at.caption[0].value  # the upload limit is said on the page ...
    assert at.file_uploader(key=UPLOADER).proto.max_upload_size_mb == 10  # ... and is the widget's
    captions = [c for img in at.image for c in img.captions]
    assert tr("your_image.as_loaded_caption", width=256, height=170, format="PNG", mode="RGB") in captions
    assert len(at.get("plotly_chart")) == 3
    head = mixed_header(at, "your_image_t")  # x_t, drawn in the browser at every t (ui/mix.py)
    assert head["captions"] == [tr("your_image.mix_caption", t="{v}")] and (head["h"], head["w"], head["c"]) == (170, 256, 3)
    assert head["positions"] == 1000 and head["min"] == 1
    at = upload(at, "photo.png", GOOD)
    assert_no_exception_element(at)
    assert not at.info  # the note went with the bundled photo
    assert tr("your_image.as_loaded_caption", width=120, height=90, format="PNG", mode="RGB") in [
        c for img in at.image for c in img.captions]


@pytest.mark.parametrize("lang", LANGS)
def test_good_upload_shows_the_forward_process(lang):
    tr = Translator(lang)
    at = upload(run_page(PAGE, lang), "photo.png", GOOD)
    assert_no_exception_element(at)
    assert not at.error
    captions = [c for img in at.image for c in img.captions]
    assert tr("your_image.as_loaded_caption", width=120, height=90, format="PNG", mode="RGB") in captions
    assert tr("your_image.model_caption", width=120, height=90, kind=tr("your_image.colour")) in captions
    assert [f"t = {s}" for s in (0, 50, 100, 250, 500, 750, 1000)] == [c for c in captions if c.startswith("t = ")]
    # The numbers beside the formula are the schedule's at the slider's t (default 250, linear).
    abar = float(make_schedule("linear", 1000).alpha_bars[250])
    values = [m.value for m in at.metric]
    assert values[:2] == [f"{math.sqrt(abar):.4f}", f"{math.sqrt(1 - abar):.4f}"]
    closed, empirical = float(values[3]), float(values[4])
    assert 0 < closed < 1 and abs(closed - empirical) < 0.05  # one draw of 32,400 values lands close
    assert len(at.get("plotly_chart")) == 3 and len(at.download_button) == 3


def test_moving_t_and_the_schedule_updates_the_numbers():
    at = upload(run_page(PAGE, "en"), "photo.png", GOOD)
    at.slider(key="your_image_t").set_value(1000)
    at.radio(key="your_image_schedule").set_value("cosine").run()
    abar = float(make_schedule("cosine", 1000).alpha_bars[1000])
    assert at.metric[0].value == f"{math.sqrt(abar):.4f}"
    assert float(at.metric[3].value) < 0.05  # at t = T almost nothing of the picture is left


def unpacked(values) -> np.ndarray:
    """A plotly array as the browser reads it: a list, or numpy's bytes packed as {"dtype", "bdata"} (base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).astype(np.float64)
    return np.asarray(values, dtype=np.float64)


def test_a_t_step_sends_the_histograms_of_that_t_and_leaves_the_charts_on_the_page():
    """Issue 24: the charts on the page are drawn once, at the slider's default t = 250 (the correlation's marker
    there); a step keeps them and sends the histograms of the new t for the browser to apply (ui/follow.py). At
    t = T the picture is gone: the histogram of all the values of x_t is N(0, 1)'s density, bin by bin."""
    at = upload(run_page(PAGE, "en"), "photo.png", GOOD)
    shown = [c.proto.spec for c in at.get("plotly_chart")]
    at.slider(key="your_image_t").set_value(1000).run()
    assert [c.proto.spec for c in at.get("plotly_chart")] == shown  # the same three figures: nothing to rebuild
    (follow,) = [json.loads(c.proto.json) for c in at.get("bidi_component") if c.proto.json]  # not a mixed picture
    assert (follow["slider"], follow["value"], follow["charts"]) == ("your_image_t", 1000, ["your_image_corr"])
    assert sorted(follow["figures"]) == ["your_image_hist_all", "your_image_hist_pixel"]
    x, heights = (unpacked(follow["figures"]["your_image_hist_all"]["data"][0][k]) for k in ("x", "y"))
    centers, h = (x[1:-2] + x[2:-1]) / 2, heights[1:-2]  # a step line: y[i] held from x[i] to x[i + 1]
    width = float(x[2] - x[1])
    pdf = np.exp(-centers**2 / 2) / math.sqrt(2 * math.pi)
    n = 90 * 120 * 3
    # each bin's height is its count / (n width): binomial, about sqrt(pdf / (n width)) of standard error
    assert np.all(np.abs(h - pdf) < 5 * np.sqrt(pdf / (n * width)) + 1e-3), np.abs(h - pdf).max()
    assert float(np.sum(h) * width) == pytest.approx(1.0, abs=1e-3)
    corr = json.loads(shown[2])["layout"]
    assert corr["shapes"][0]["x0"] == 250 and corr["meta"]["follow"]["line"] == 0  # drawn at the default


@pytest.mark.parametrize("lang", LANGS)
def test_every_kind_of_bad_upload_is_explained_and_a_good_one_works_after(lang):
    at = run_page(PAGE, lang)
    for case, name, data, code in BAD_UPLOADS:
        at = upload(at, name, data, "application/octet-stream")
        assert_no_exception_element(at)
        assert [e.value for e in at.error] == [expected_message(lang, data, code)], case
        assert not at.image and not at.metric, f"{case}: the page must stop at the message"
    at = upload(at, "photo.png", GOOD)
    assert_no_exception_element(at)
    assert not at.error and len(at.image) > 0


def test_other_pages_keep_working_after_a_bad_upload():
    at = upload(run_page(PAGE, "vi"), "bad.png", b"garbage")
    assert at.error
    at.switch_page("app.py").run()
    assert_no_exception_element(at)
    assert at.title[0].value.startswith("Học toán")


@pytest.mark.parametrize("lang", LANGS)
def test_language_switch_keeps_the_picture_and_the_controls(lang):
    other = "en" if lang == "vi" else "vi"
    at = upload(run_page(PAGE, lang), "photo.png", GOOD)
    at.slider(key="your_image_t").set_value(500).run()
    at.sidebar.radio(key="_widget_lang").set_value(other).run()
    assert_no_exception_element(at)
    assert at.title[0].value == Translator(other)("your_image.title")
    assert at.slider(key="your_image_t").value == 500
    assert not at.info or Translator(other)("your_image.upload_prompt") not in [i.value for i in at.info]


def test_notes_for_animation_rotation_and_transparency():
    tr = Translator("vi")
    frames = [Image.new("RGB", (40, 30), c) for c in ((200, 30, 30), (30, 30, 200))]
    rgba = photo().convert("RGBA")
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    at = run_page(PAGE, "vi")
    for data, note in ((encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), "note_animated"),
                       (encode(photo(), "JPEG", exif=exif), "note_rotated"),
                       (encode(rgba), "note_transparent")):
        at = upload(at, "x", data)
        assert_no_exception_element(at)
        assert tr(f"your_image.{note}") in [i.value for i in at.info]


def test_blank_picture_cannot_become_a_digit():
    tr = Translator("en")
    at = upload(run_page(PAGE, "en"), "white.png", encode(Image.new("L", (50, 50), 255)))
    assert_no_exception_element(at)
    assert tr("your_image.error_blank") in [w.value for w in at.warning]
    assert tr("your_image.corr_flat") in [i.value for i in at.info]
    assert "your_image_send" not in [b.key for b in at.button]  # nothing to send


def test_bundled_digit_is_sent_to_the_denoiser():
    at = run_page(PAGE, "en")
    at.radio(key="your_image_source").set_value("sample").run()
    at.selectbox(key="your_image_sample").set_value("digit_3").run()
    assert_no_exception_element(at)
    assert any("grayscale" in c for img in at.image for c in img.captions)
    at.button(key="your_image_send").click().run()
    assert_no_exception_element(at)
    digit = at.session_state["sdedit_digit"]
    assert digit.dtype == np.uint8 and digit.shape == (28, 28) and digit.max() == 255
    assert at.session_state["sdedit_source"] == "upload"
    if REVERSE_PAGE.is_file():  # the app went on to the reverse process
        assert at.title[0].value != Translator("en")("your_image.title")
    else:
        assert Translator("en")("your_image.reverse_coming") in [i.value for i in at.info]


# ------------------------------------------------------------------ the real browser
UPLOAD_INPUT = '[data-testid="stFileUploaderDropzoneInput"]'


def browser_upload(pg, name: str, data: bytes, mime: str) -> None:
    pg.locator(UPLOAD_INPUT).set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
    pg.wait_for_timeout(500)  # the upload, then the rerun it triggers
    wait_idle(pg)


def tall_screenshot(pg, name: str) -> None:
    """The app scrolls inside its main section, so a full-page shot shows one screen: grow the window first."""
    height = pg.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    pg.set_viewport_size({"width": 1400, "height": min(max(1000, int(height) + 40), 9000)})
    pg.wait_for_timeout(800)  # charts re-lay themselves out
    screenshot(pg, name)
    pg.set_viewport_size({"width": 1400, "height": 1000})


def wait_for_images(pg, n: int) -> None:
    pg.wait_for_function(f"document.querySelectorAll('[data-testid=\"stImage\"]').length >= {n}", timeout=60000)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("lang", LANGS)
def test_upload_in_the_browser(page, app_url, lang):
    """A good picture, then a file that is not a picture, through the real upload widget."""
    tr = Translator(lang)
    open_page(page, app_url, "Your_image", lang)
    assert_no_exception(page)

    browser_upload(page, "photo.png", GOOD, "image/png")
    wait_for_images(page, 10)  # as loaded, for the model, x0, 7 in the strip, the digit (x_t is drawn: ui/mix.py)
    wait_idle(page)
    assert_no_exception(page)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.get_by_text(tr("your_image.corr_header")).count() == 1
    page.wait_for_function("() => { const c = document.querySelector('.st-key-your_image_pictures canvas');"
                           " return c && c.width == 120 && c.height == 90; }", timeout=30000)  # x_t of the upload
    if lang == "en":  # the x_t download, generated on click (deferred), is the PNG of x_t
        with page.expect_download(timeout=30000) as info:
            page.get_by_role("button", name=tr("your_image.download_xt")).click()
        with Image.open(info.value.path()) as png:
            assert png.format == "PNG" and png.size == (120, 90) and png.mode == "RGB"
        assert info.value.suggested_filename == "x_t_250.png"
    tall_screenshot(page, f"your_image_{lang}")

    browser_upload(page, "holiday.jpg", b"this is not a photo at all" * 10, "image/jpeg")
    message = flat(tr("your_image.error_not_image"))
    alert = page.locator('[data-testid="stAlertContentError"]').filter(has_text=message[:40])
    alert.wait_for(timeout=30000)
    assert message in flat(alert.inner_text())
    wait_idle(page)  # elements of the previous run stay on screen until the script ends
    assert page.locator('[data-testid="stImage"], .course-mix canvas').count() == 0  # the message instead of the picture
    assert_no_exception(page)
    screenshot(page, f"your_image_error_{lang}")
