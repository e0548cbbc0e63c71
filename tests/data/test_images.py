"""diffusion_core.data.images: uploads decoded or refused with a reason, encodings, MNIST-style digits.

Every test picture is made here with Pillow, so each expected value follows from how it was made.
"""

from __future__ import annotations

import io
import struct
import tomllib
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.conftest import LANGS, ROOT
from diffusion_core.data import uploads
from diffusion_core.data.images import (
    MAX_PIXELS,
    MNIST_CENTRE,
    MAX_UPLOAD_BYTES,
    BlankImageError,
    ErrorCode,
    ImageLoadError,
    LoadedImage,
    encode_gif,
    encode_png,
    load_image,
    loaded_from_array,
    read_image,
    to_mnist_digit,
)
from ui.i18n import Translator

RNG = np.random.default_rng(0)


def encode(im: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 64, height: int = 48) -> Image.Image:
    """A smooth colour picture (compresses like a photo, survives JPEG)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * x / max(1, width - 1), 255 * y / max(1, height - 1), np.full_like(x, 90.0)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def refused(data: bytes, **kwargs) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        read_image(data, **kwargs)
    return info.value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header claims width x height RGB pixels; its data hold a few bytes only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


# ------------------------------------------------------------------ good pictures
def test_load_image_maps_pixels_to_minus_one_one():
    pixels = np.array([[0, 255, 51], [102, 127, 204]], dtype=np.uint8)
    x = load_image(encode(Image.fromarray(pixels), "PNG"))
    assert x.dtype == np.float32 and x.shape == (2, 3, 1)
    np.testing.assert_allclose(x[:, :, 0], pixels / 127.5 - 1.0, atol=1e-6)  # x = p / 127.5 - 1
    assert x.min() >= -1.0 and x.max() <= 1.0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_allowed_format_decodes_in_colour(fmt):
    data = encode(photo(), fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    loaded = read_image(data)
    assert loaded.format == fmt
    assert loaded.pixels.shape == (48, 64, 3) and not loaded.grayscale
    assert loaded.display.shape == (48, 64, 3)
    assert loaded.size == (64, 48)
    # The red channel grows from left to right as drawn (GIF's 256 colours and JPEG blur it a little).
    assert loaded.pixels[24, 0, 0] < 40 and loaded.pixels[24, -1, 0] > 215


def test_grayscale_stays_grayscale():
    loaded = read_image(encode(photo().convert("L"), "JPEG"))
    assert loaded.grayscale and loaded.pixels.shape == (48, 64, 1) and loaded.display.shape == (48, 64)


@pytest.mark.parametrize(("size", "expected_hw"), [
    ((1000, 500), (128, 256)),  # longest side 256, aspect ratio 2:1 kept
    ((300, 900), (256, 85)),  # 300 * 256 / 900 = 85.3
    ((10000, 1), (1, 256)),  # never below 1 px a side
    ((1, 10000), (256, 1)),
    ((1, 1), (1, 1)),  # small pictures are not enlarged
    ((200, 100), (100, 200)),
])
def test_resize_keeps_aspect_ratio_and_at_least_one_pixel(size, expected_hw):
    x = load_image(encode(Image.new("RGB", size, (10, 200, 30)), "PNG"))
    assert x.shape == (*expected_hw, 3)
    np.testing.assert_allclose(x[0, 0], np.array([10, 200, 30]) / 127.5 - 1, atol=0.02)


def test_max_side_is_honoured():
    assert load_image(encode(photo(640, 480), "PNG"), max_side=64).shape == (48, 64, 3)
    with pytest.raises(ValueError):
        load_image(b"x", max_side=0)


def test_mode_la_composites_on_white():
    la = Image.new("LA", (4, 2), (0, 255))  # opaque black
    la.putpixel((0, 0), (0, 0))  # fully transparent -> white
    la.putpixel((1, 0), (0, 128))  # half transparent black -> middle gray
    loaded = read_image(encode(la, "PNG"))
    assert loaded.grayscale and loaded.transparent
    p = loaded.pixels[:, :, 0]
    assert p[0, 0] == 255 and p[1, 3] == 0
    assert abs(int(p[0, 1]) - 127) <= 1  # 255 * (1 - 128/255)


def test_mode_rgba_composites_on_white():
    rgba = Image.new("RGBA", (3, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (255, 0, 0, 0))
    rgba.putpixel((2, 0), (0, 0, 255, 128))
    loaded = read_image(encode(rgba, "PNG"))
    assert loaded.transparent and not loaded.grayscale
    np.testing.assert_array_equal(loaded.pixels[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(loaded.pixels[0, 1], [255, 255, 255])
    np.testing.assert_allclose(loaded.pixels[0, 2], [127, 127, 255], atol=1)


def test_opaque_rgba_is_not_reported_as_transparent():
    assert not read_image(encode(photo().convert("RGBA"), "PNG")).transparent


def test_palette_with_transparency_composites_on_white():
    p = Image.new("P", (2, 1))
    p.putpalette([0, 0, 200] + [255, 0, 0] + [0] * (254 * 3))
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    loaded = read_image(encode(p, "PNG", transparency=1))  # colour 1 (red) is transparent
    assert loaded.mode == "P" and loaded.transparent
    np.testing.assert_array_equal(loaded.pixels[0, 0], [0, 0, 200])
    np.testing.assert_array_equal(loaded.pixels[0, 1], [255, 255, 255])


def test_palette_of_grays_counts_as_grayscale():
    gray_gif = encode(photo().convert("L").convert("P"), "GIF")
    assert read_image(gray_gif).grayscale
    assert not read_image(encode(photo().convert("P"), "GIF")).grayscale


def test_mode_cmyk_becomes_rgb():
    cmyk = Image.new("CMYK", (2, 1), (0, 0, 0, 0))  # no ink: white
    cmyk.putpixel((1, 0), (255, 0, 0, 0))  # full cyan ink: no red
    loaded = read_image(encode(cmyk, "TIFF"))
    assert loaded.mode == "CMYK" and not loaded.grayscale
    np.testing.assert_array_equal(loaded.pixels[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(loaded.pixels[0, 1], [0, 255, 255])


def test_mode_i16_is_scaled_to_eight_bits():
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)  # 16-bit: 65535 / 257 = 255
    loaded = read_image(encode(Image.fromarray(values), "PNG"))
    assert loaded.mode.startswith("I") and loaded.grayscale
    np.testing.assert_array_equal(loaded.pixels[0, :, 0], [0, 128, 255])


def test_mode_1_bit_is_black_and_white():
    bits = Image.new("1", (3, 1), 0)
    bits.putpixel((1, 0), 1)
    loaded = read_image(encode(bits, "BMP"))
    assert loaded.mode == "1" and loaded.grayscale
    np.testing.assert_array_equal(loaded.pixels[0, :, 0], [0, 255, 0])


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = read_image(data)
    assert loaded.animated and loaded.format == "GIF"
    np.testing.assert_array_equal(loaded.pixels[4, 4], [255, 0, 0])
    assert not read_image(encode(frames[0], "GIF")).animated


@pytest.mark.parametrize(("orientation", "top_is_red"), [(6, True), (8, False)])
def test_exif_orientation_is_applied(orientation, top_is_red):
    """Stored 40 x 20, red left half, blue right half. EXIF 6 = 'turn 90 degrees clockwise to view':
    the left (red) side comes to the top; EXIF 8 turns the other way, so blue is on top."""
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    loaded = read_image(encode(stored, "JPEG", quality=95, exif=exif))
    assert loaded.rotated and loaded.size == (20, 40) and loaded.pixels.shape == (40, 20, 3)
    top, bottom = loaded.pixels[5, 10], loaded.pixels[35, 10]
    red, blue = (top, bottom) if top_is_red else (bottom, top)
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert not read_image(encode(stored, "JPEG")).rotated


def test_large_jpeg_is_decoded_small():
    loaded = read_image(encode(photo(2400, 1600), "JPEG"))  # decoded at half size in the DCT, then shrunk
    assert loaded.size == (2400, 1600)
    assert max(loaded.display.shape[:2]) == uploads.DISPLAY_MAX_SIDE and loaded.pixels.shape == (171, 256, 3)


def test_loaded_from_array_matches_read_image():
    picture = np.asarray(photo())
    from_array, from_png = loaded_from_array(picture), read_image(encode(Image.fromarray(picture), "PNG"))
    np.testing.assert_array_equal(from_array.pixels, from_png.pixels)
    assert isinstance(from_array, LoadedImage) and from_array.size == (64, 48)
    assert loaded_from_array(np.zeros((28, 28), np.uint8)).pixels.shape == (28, 28, 1)


# ------------------------------------------------------------------ refusals
def test_empty_file():
    assert refused(b"").code is ErrorCode.EMPTY


@pytest.mark.parametrize("data", [
    b"Hello, this is a text file renamed to photo.png\n" * 20,
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" * 5,  # a PDF
    b"\x7fELF\x02\x01\x01\x00" + bytes(200),  # a Linux program
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(200),  # a Windows program
    b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing else
], ids=["text", "pdf", "elf", "exe", "png-signature-only"])
def test_not_an_image_whatever_its_name(data):
    assert refused(data).code is ErrorCode.NOT_IMAGE


@pytest.mark.parametrize("fmt", ["TGA", "PCX", "ICO", "PPM"])
def test_formats_outside_the_allow_list_are_not_tried(fmt):
    data = encode(photo(), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself would open it ...
    assert refused(data).code is ErrorCode.NOT_IMAGE  # ... but the loader does not guess


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    noisy = Image.fromarray(RNG.integers(0, 256, (200, 200, 3), dtype=np.uint8))  # does not compress
    data = encode(noisy, fmt)
    assert refused(data[: len(data) // 2]).code is ErrorCode.TRUNCATED
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_damaged_pixel_data():
    noisy = Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    jpeg = bytearray(encode(noisy, "JPEG"))
    dht = jpeg.index(b"\xff\xc4")  # the first Huffman table: claim 255 codes of every length
    jpeg[dht + 5 : dht + 21] = bytes([255] * 16)
    assert refused(bytes(jpeg)).code is ErrorCode.CORRUPT
    tiff = bytearray(encode(noisy, "TIFF", compression="tiff_deflate"))
    tiff[8:40] = bytes(32)  # the start of the compressed pixels (the header's directory is at the end)
    assert refused(bytes(tiff)).code is ErrorCode.CORRUPT


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns above its limit ...
def test_bomb_above_our_limit_is_refused_before_decoding():
    """7000 x 7000 = 49 Mpx: above MAX_PIXELS but below Pillow's own error (twice its limit; Pillow
    only warns), so only our check on the header stops it. The file's data hold 64 bytes: had decoding started, the
    answer would be TRUNCATED or CORRUPT, not TOO_MANY_PIXELS."""
    data = png_claiming(7000, 7000)
    assert len(data) < 200 and 7000 * 7000 > MAX_PIXELS
    error = refused(data)
    assert error.code is ErrorCode.TOO_MANY_PIXELS
    assert error.fields["width"] == 7000 and error.fields["limit_mp"] == f"{MAX_PIXELS / 1e6:g}"


def test_bomb_far_above_the_limit_is_refused_by_pillow_too():
    gif = bytearray(encode(Image.new("L", (8, 8)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # the screen size: 4.3 billion pixels, in a 40-byte file
    assert refused(bytes(gif)).code is ErrorCode.TOO_MANY_PIXELS
    assert refused(png_claiming(100_000, 100_000)).code is ErrorCode.TOO_MANY_PIXELS


def test_pillow_limits_are_set_on_purpose():
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    assert uploads.ALLOWED_FORMATS == ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


def test_a_picture_just_under_the_pixel_limit_is_fine():
    assert read_image(encode(Image.new("L", (2000, 1000)), "PNG"), max_pixels=2_000_000).size == (2000, 1000)
    assert refused(encode(Image.new("L", (2000, 1001)), "PNG"), max_pixels=2_000_000).code is ErrorCode.TOO_MANY_PIXELS


def test_more_bytes_than_the_upload_limit():
    error = refused(bytes(MAX_UPLOAD_BYTES + 1))
    assert error.code is ErrorCode.TOO_LARGE and error.fields["limit_mb"] == "10"
    assert refused(encode(photo(), "BMP"), max_bytes=1000).code is ErrorCode.TOO_LARGE


def test_upload_limit_matches_the_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert MAX_UPLOAD_BYTES == config["server"]["maxUploadSize"] * 2**20


def test_unsupported_mode(monkeypatch):
    def no_conversion(self, *args, **kwargs):
        raise ValueError("conversion from LAB to RGB not supported")
    cmyk = encode(Image.new("CMYK", (4, 4)), "TIFF")
    monkeypatch.setattr(Image.Image, "convert", no_conversion)
    error = refused(cmyk)
    assert error.code is ErrorCode.UNSUPPORTED_MODE and error.fields == {"mode": "CMYK"}


@pytest.mark.parametrize(("raised", "code"), [
    (MemoryError(), ErrorCode.OUT_OF_MEMORY),
    (EOFError(), ErrorCode.TRUNCATED),
    (OSError("image file is truncated (3 bytes not processed)"), ErrorCode.TRUNCATED),
    (OSError("broken data stream when reading image file"), ErrorCode.CORRUPT),
    (struct.error("unpack requires a buffer of 4 bytes"), ErrorCode.CORRUPT),
    (SyntaxError("not a TIFF file"), ErrorCode.CORRUPT),
    (ZeroDivisionError(), ErrorCode.CORRUPT),
    (type("SomethingNew", (Exception,), {})(), ErrorCode.CORRUPT),  # a type Pillow is not known to raise
])
def test_whatever_the_decoder_raises_becomes_an_image_load_error(monkeypatch, raised, code):
    def load(self):
        raise raised
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    assert refused(encode(photo(), "PNG")).code is code


def test_wrong_call_is_a_type_error_not_a_student_message():
    with pytest.raises(TypeError):
        read_image("photo.png")  # type: ignore[arg-type]


# ------------------------------------------------------------------ messages
def example_errors() -> list[ImageLoadError]:
    """One error of each code, with the fields the loader really gives it."""
    return [refused(b""), refused(bytes(MAX_UPLOAD_BYTES + 1)), refused(b"text"), refused(png_claiming(7000, 7000)),
            ImageLoadError(ErrorCode.TRUNCATED), ImageLoadError(ErrorCode.CORRUPT),
            ImageLoadError(ErrorCode.UNSUPPORTED_MODE, mode="LAB"), ImageLoadError(ErrorCode.OUT_OF_MEMORY)]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("lang", LANGS)
def test_every_error_code_has_a_message_in_each_language(lang):
    tr = Translator(lang)
    errors = example_errors()
    assert {e.code for e in errors} == set(ErrorCode)
    for error in errors:
        message = tr(f"your_image.error_{error.code}", **error.fields)
        assert message.strip() and "{" not in message, (error.code, message)
    assert tr("your_image.error_blank").strip()
    assert "10" in tr("your_image.error_too_large", size_mb="12.5", limit_mb="10")


def test_message_keys_match_between_languages():
    vi, en = Translator("vi").table, Translator("en").table
    assert {k for k in vi if k.startswith("your_image.")} == {k for k in en if k.startswith("your_image.")}
    assert all(vi[k] != en[k] for k in vi if k.startswith("your_image.error_")), "an untranslated error message"


# ------------------------------------------------------------------ downloads
def test_encode_png_round_trips():
    for picture in (np.asarray(photo()), np.asarray(photo().convert("L")), np.zeros((5, 7, 1), np.uint8)):
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(picture))))
        expected = picture[:, :, 0] if picture.ndim == 3 and picture.shape[2] == 1 else picture
        np.testing.assert_array_equal(decoded, expected)


def test_encode_gif_is_an_animation_of_the_frames():
    frames = [np.full((16, 16), v, np.uint8) for v in (0, 128, 255)]
    with Image.open(io.BytesIO(encode_gif(frames, frame_ms=250))) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3 and gif.info["duration"] == 250 and gif.info["loop"] == 0
        gif.seek(2)
        assert np.asarray(gif.convert("L"))[8, 8] == 255
    with pytest.raises(ValueError):
        encode_gif([np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8)])


# ------------------------------------------------------------------ MNIST-style digits
def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0 : digit.shape[0], 0 : digit.shape[1]]
    w = digit.astype(np.float64)
    return float((rows * w).sum() / w.sum()), float((cols * w).sum() / w.sum())


def drawn_seven(height: int = 300, width: int = 200, ink: int = 0, paper: int = 255) -> np.ndarray:
    """A thick '7' drawn off-centre, near the top-left of a page."""
    page = np.full((height, width), paper, np.uint8)
    page[20:40, 15:120] = ink  # the bar
    for r in range(40, 160):  # the slanted stroke
        c = 110 - (r - 40) // 2
        page[r, c - 10 : c + 10] = ink
    return page


@pytest.mark.parametrize("picture", [
    drawn_seven(),  # black on white paper
    drawn_seven(ink=255, paper=0),  # white on black, like MNIST
    np.stack([drawn_seven(ink=40, paper=230)] * 3, axis=-1),  # colour photo of paper
    drawn_seven()[:, :, None].astype(np.float32) / 127.5 - 1.0,  # float in [-1, 1], as load_image gives
], ids=["dark-on-light", "light-on-dark", "colour", "float"])
def test_to_mnist_digit_is_centred_and_scaled_like_mnist(picture):
    digit = to_mnist_digit(picture)
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    cy, cx = centre_of_mass(digit)
    assert abs(cy - MNIST_CENTRE) <= 0.5 and abs(cx - MNIST_CENTRE) <= 0.5  # to the nearest pixel
    rows, cols = np.nonzero(digit)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20  # the longest side of the digit fills the 20 x 20 box
    assert digit.max() == 255 and digit[0].max() == 0 and digit[:, 0].max() == 0  # white digit, black border


def test_mnist_centre_is_where_mnist_digits_have_it():
    """The ten bundled MNIST digits: centre of mass within half a pixel of MNIST_CENTRE."""
    samples = pytest.importorskip("diffusion_core.data.samples")
    for name in samples.list_sample_images("digit"):
        cy, cx = centre_of_mass(samples.load_sample_image(name))
        assert abs(cy - MNIST_CENTRE) < 0.6 and abs(cx - MNIST_CENTRE) < 0.6, name


def test_dark_and_light_backgrounds_give_the_same_digit():
    a, b = to_mnist_digit(drawn_seven()), to_mnist_digit(drawn_seven(ink=255, paper=0))
    np.testing.assert_array_equal(a, b)


def test_an_mnist_digit_stays_itself():
    samples = pytest.importorskip("diffusion_core.data.samples")
    original = samples.load_sample_image("digit_7")
    digit = to_mnist_digit(original)
    assert np.corrcoef(original.ravel(), digit.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("picture", [np.full((50, 40), 200, np.uint8), np.zeros((28, 28, 3), np.uint8),
                                     np.zeros((10, 10), np.float32)], ids=["gray", "black", "float"])
def test_a_blank_picture_is_a_clear_error(picture):
    with pytest.raises(BlankImageError, match="blank"):
        to_mnist_digit(picture)
