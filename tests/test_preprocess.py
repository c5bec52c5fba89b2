"""recognizer.preprocess: drawings, photos and dataset images meet the model the same way."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer.ink import _grey_where, _ink_levels, _mask_box, _percentiles8
from recognizer.inputs import MAX_SIDE, _opaque8
from recognizer.preprocess import (
    BadImage,
    InputError,
    NothingDrawn,
    frame,
    from_idx,
    sketchpad_value,
    stroke_width,
    to_model_input,
)

TESTS = Path(__file__).resolve().parent
# Real EMNIST test images: the shared data beside the checkout, else the few hundred shipped in tests/.
IMAGE_SOURCES = [
    TESTS.parents[1] / "shared" / "data" / "emnist" / "emnist-byclass-test-images-idx3-ubyte.gz",
    TESTS / "fixtures" / "emnist" / "partial" / "emnist-byclass-test-images-idx3-ubyte.fixture.gz",
]

def ink_map(image) -> np.ndarray:
    """The full float32 ink map in [0, 1] (paper at 0, noise removed): the reference the lazy 8-bit path must match."""
    return _ink_levels(image).full()


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the half-ink pixels after despeckling, bottom/right exclusive."""
    return _mask_box(ink >= 0.5)


# A stroke list in 0..1 coordinates that reads as a '4'.
FOUR = [[(0.55, 0.1), (0.15, 0.65), (0.75, 0.65)], [(0.6, 0.35), (0.6, 0.95)]]


def draw(
    strokes=FOUR,
    size: int = 400,
    box: tuple[float, float, float, float] = (60, 40, 300, 360),
    width: int = 16,
    ink=0,
    paper=255,
    mode: str = "L",
) -> Image.Image:
    """Strokes scaled into ``box`` (left, top, right, bottom) on a canvas of ``size``."""
    image = Image.new(mode, (size, size), paper)
    pen = ImageDraw.Draw(image)
    left, top, right, bottom = box
    for stroke in strokes:
        points = [(left + x * (right - left), top + y * (bottom - top)) for x, y in stroke]
        pen.line(points, fill=ink, width=width, joint="curve")
        for x, y in points:  # round caps, like a brush
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
    return image


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return to_model_input(np.asarray(draw()))


def check_output(x: np.ndarray) -> None:
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() == pytest.approx(1.0)


# ---------------------------------------------------------------- real EMNIST images


def emnist_images(n: int) -> np.ndarray:
    """Up to n real byclass test images, as stored (transposed)."""
    source = next((p for p in IMAGE_SOURCES if p.is_file()), None)
    if source is None:
        pytest.skip(
            f"needs real EMNIST images: neither {IMAGE_SOURCES[0]} nor the shipped fixture is present"
        )
    with gzip.open(source) as handle:
        header = np.frombuffer(handle.read(16), ">u4")
        assert header[0] == 2051 and tuple(header[2:]) == (28, 28)
        n = min(n, int(header[1]))
        return np.frombuffer(handle.read(n * 784), np.uint8).reshape(n, 28, 28)


def paste_on_canvas(upright: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An upright [0,1] image enlarged 8-12x, black on a 400x400 white RGB canvas, off-centre."""
    scale = int(rng.integers(8, 13))
    big = Image.fromarray(np.round(255 - upright * 255).astype(np.uint8))
    big = big.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (400, 400), "white")
    x, y = (int(v) for v in rng.integers(0, 400 - 28 * scale + 1, size=2))
    canvas.paste(big.convert("RGB"), (x, y))
    return np.asarray(canvas)


def test_drawn_emnist_images_come_back_as_emnist() -> None:
    """The property the app depends on: a drawing of an EMNIST image preprocesses into that image."""
    stored = emnist_images(3000)
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(stored), min(300, len(stored)), replace=False)
    correlations, errors = [], []
    for i in chosen:
        original = from_idx(stored[i])
        got = to_model_input(paste_on_canvas(original, rng))
        check_output(got)
        correlations.append(corr(got, original))
        errors.append(np.abs(got - original).mean())
    assert np.median(correlations) > 0.95, np.percentile(correlations, [5, 50])
    assert np.percentile(correlations, 10) > 0.85
    assert np.median(errors) < 0.05


def test_from_idx_transposes_and_scales() -> None:
    stored = np.zeros((28, 28), np.uint8)
    stored[3, 20] = 255  # stored transposed: upright it is row 20, column 3
    upright = from_idx(stored)
    assert upright.dtype == np.float32 and upright[20, 3] == 1.0 and upright.sum() == 1.0
    batch = from_idx(np.stack([stored, stored // 2 + 1]))
    assert batch.shape == (2, 28, 28) and batch[1, 20, 3] == pytest.approx(128 / 255)
    with pytest.raises(BadImage):
        from_idx(np.zeros((28, 28), np.float32))
    with pytest.raises(BadImage):
        from_idx(np.zeros((32, 32), np.uint8))


# ---------------------------------------------------------------- same output as before the speed-up

# Outputs of to_model_input as it was before it was optimised (commit 343f770), for the inputs of
# ``reference_inputs``; written once by ``write_reference`` with that code. The optimised code reads
# 8-bit colour through Pillow's integer luma (within half a grey step, 0.002, of the old float luma)
# and sums the blur in another order, so tiny differences are expected: the worst measured is 0.003
# (the photo, the only coloured input with uneven paper); grey canvases match to 1e-6. 0.01 leaves
# room for that rounding and still catches any change to the framing, blur, thickening or scaling.
REFERENCE_FILE = TESTS / "fixtures" / "preprocess_reference.npz"
REFERENCE_TOLERANCE = 0.01
FIXTURE_IMAGES = IMAGE_SOURCES[-1]  # the shipped fixture, so the inputs are the same on every machine


def reference_inputs() -> dict[str, object]:
    """Canvas drawings of real EMNIST images (as the app gets them) and every other kind of input the tests use."""
    with gzip.open(FIXTURE_IMAGES) as handle:
        handle.read(16)
        stored = np.frombuffer(handle.read(40 * 784), np.uint8).reshape(40, 28, 28)
    rng = np.random.default_rng(14)
    inputs: dict[str, object] = {}
    for i, image in enumerate(stored[:24]):
        inputs[f"sketchpad_{i}"] = sketchpad_value(paste_on_canvas(from_idx(image), rng))
    for i, image in enumerate(stored[24:36]):
        inputs[f"rgb_{i}"] = paste_on_canvas(from_idx(image), rng)
    for i, image in enumerate(stored[36:40]):  # 2-pixel outlines of the characters: the thickening path
        big = np.pad(np.kron(from_idx(image) > 0.5, np.ones((12, 12), bool)), 2)
        inner = big[2:-2, 2:-2].copy()
        for dy, dx in [(-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (1, 1), (-1, 1), (1, -1)]:
            inner &= big[2 + dy : big.shape[0] - 2 + dy, 2 + dx : big.shape[1] - 2 + dx]
        inputs[f"thin_{i}"] = np.where(big[2:-2, 2:-2] & ~inner, 0, 255).astype(np.uint8)
    ink = 1.0 - np.asarray(draw(), np.float32) / 255
    yy, xx = np.mgrid[0:400, 0:400] / 400.0
    photo = np.clip(((0.55 + 0.35 * xx + 0.05 * yy) * (1 - 0.7 * ink) + rng.normal(0, 0.03, ink.shape)) * 255, 0, 255)
    specks = np.asarray(draw()).copy()
    specks[380:382, 5:7] = 0
    layer = np.asarray(draw(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)))
    inputs.update({
        "four_grey": np.asarray(draw()),
        "four_thin_pen": np.asarray(draw(box=(20, 20, 380, 380), width=2)),
        "four_white_on_black": np.asarray(draw(ink=255, paper=0)),
        "four_coloured": np.asarray(draw(mode="RGB", ink=(20, 40, 160), paper=(250, 240, 200))),
        "four_transparent": layer,
        "four_layers_only": {"background": None, "layers": [layer], "composite": None},
        "four_photo": np.stack([photo, photo, photo * 0.9], axis=-1).astype(np.uint8),
        "four_specks": specks,
        "four_small": np.asarray(draw(box=(250, 250, 310, 330), width=4)),
        "four_edge": np.asarray(draw(box=(-5, -5, 405, 405), width=30)),
        "four_1024": np.asarray(draw(box=(100, 50, 700, 850), width=40, size=1024)),
        "four_huge_pil": draw(size=3000, box=(450, 300, 2250, 2700), width=110),
        "four_float": np.asarray(draw(), np.float32) / 255,
        "four_uint16": (np.asarray(draw(), np.float32) / 255 * 65535).astype(np.uint16),
        "four_bool": np.asarray(draw()) > 127,
    })
    return inputs


def write_reference() -> None:
    """Freeze the current outputs (run only with the code the reference is meant to record)."""
    np.savez_compressed(REFERENCE_FILE, **{k: to_model_input(v) for k, v in reference_inputs().items()})


def test_same_output_as_before_the_speed_up() -> None:
    with np.load(REFERENCE_FILE) as saved:
        reference = {k: saved[k] for k in saved.files}
    inputs = reference_inputs()
    assert sorted(inputs) == sorted(reference)
    worst = {name: float(np.abs(to_model_input(value) - reference[name]).max()) for name, value in inputs.items()}
    assert max(worst.values()) <= REFERENCE_TOLERANCE, sorted(worst.items(), key=lambda kv: -kv[1])[:5]


def test_lazy_ink_levels_match_the_full_ink_map() -> None:
    """to_model_input makes floats only around the character; the full float map must frame identically."""
    inputs = {k: v for k, v in reference_inputs().items() if "huge" not in k}
    grey = np.asarray(draw())
    yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    inputs["textured_paper"] = np.where(grey < 128, grey, np.where((yy + xx) % 2, 226, 240)).astype(np.uint8)
    for name, value in inputs.items():
        ink = ink_map(value)
        np.testing.assert_array_equal(frame(ink, ink_box(ink)), to_model_input(value), err_msg=name)


def test_histogram_percentiles_are_numpys() -> None:
    rng = np.random.default_rng(5)
    for n in [1, 2, 3, 10, 999, 12_800]:
        for values in (rng.integers(0, 256, n), rng.choice([0, 17, 200, 255], n), np.full(n, 9)):
            values = values.astype(np.uint8)
            qs = [0, 10, 50, 90, 100, float(rng.uniform(0, 100))]
            assert _percentiles8(values, qs) == list(np.percentile(values, qs))
            assert _percentiles8(values, [50]) == [np.median(values)]


def test_grey_levels_select_like_a_lookup() -> None:
    grey = np.random.default_rng(6).integers(0, 256, (40, 50)).astype(np.uint8)
    levels = np.arange(256)
    for flags in (levels <= 90, levels >= 200, levels < 0, levels >= 0, (levels > 30) & (levels < 60), levels % 7 == 0):
        np.testing.assert_array_equal(_grey_where(grey, flags), flags[grey])


def test_opaque_check_reads_the_alpha_channel() -> None:
    rng = np.random.default_rng(7)
    for channels in (2, 4):
        for low in (0, 249, 250, 255):
            a = rng.integers(250, 256, (30, 20, channels)).astype(np.uint8)
            a[3, 4, -1] = low
            for array in (a, a[:, ::2], np.asfortranarray(a)):  # contiguous, strided, Fortran order
                assert _opaque8(array) == (low >= 250), (channels, low, array.flags.c_contiguous)


def test_pil_images_read_like_their_arrays() -> None:
    rgb = draw(mode="RGB", ink=(20, 40, 160), paper=(250, 240, 200))
    rgba = rgb.convert("RGBA")
    for image in (rgb, rgb.convert("L"), rgba, rgba.convert("LA")):
        np.testing.assert_array_equal(to_model_input(image), to_model_input(np.asarray(image)), err_msg=image.mode)


# ---------------------------------------------------------------- Gradio Sketchpad values


def test_sketchpad_first_event_is_nothing_drawn() -> None:
    with pytest.raises(NothingDrawn, match="Nothing drawn"):
        to_model_input({"background": None, "layers": [], "composite": None})
    with pytest.raises(NothingDrawn):
        to_model_input(None)


def test_sketchpad_blank_composite_is_nothing_drawn() -> None:
    white = np.full((400, 400, 4), 255, np.uint8)
    empty_layer = np.zeros((400, 400, 4), np.uint8)
    with pytest.raises(NothingDrawn):
        to_model_input({"background": white, "layers": [empty_layer], "composite": white})


def test_sketchpad_composite_matches_plain_drawing(reference: np.ndarray) -> None:
    composite = np.asarray(draw(mode="RGBA", ink=(0, 0, 0, 255), paper=(255, 255, 255, 255)))
    layer = np.asarray(draw(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)))
    background = np.full_like(composite, 255)
    value = {"background": background, "layers": [layer], "composite": composite}
    assert corr(to_model_input(value), reference) > 0.99
    # Without a composite the layers' alpha is the ink.
    value = {"background": None, "layers": [layer], "composite": None}
    assert corr(to_model_input(value), reference) > 0.99


def test_rgba_with_transparent_background(reference: np.ndarray) -> None:
    black_strokes = np.asarray(draw(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)))
    white_strokes = np.asarray(draw(mode="RGBA", ink=(255, 255, 255, 255), paper=(255, 255, 255, 0)))
    assert corr(to_model_input(black_strokes), reference) > 0.99
    assert corr(to_model_input(white_strokes), reference) > 0.99
    with pytest.raises(NothingDrawn):
        to_model_input(np.zeros((100, 100, 4), np.uint8))


# ---------------------------------------------------------------- polarity, position, size


def test_white_ink_on_black(reference: np.ndarray) -> None:
    assert corr(to_model_input(np.asarray(draw(ink=255, paper=0))), reference) > 0.99


def test_coloured_ink_on_coloured_paper(reference: np.ndarray) -> None:
    image = draw(mode="RGB", ink=(20, 40, 160), paper=(250, 240, 200))
    assert corr(to_model_input(image), reference) > 0.98


def test_position_and_size_do_not_matter(reference: np.ndarray) -> None:
    small = draw(box=(250, 250, 310, 330), width=4, size=400)
    assert corr(to_model_input(np.asarray(small)), reference) > 0.93
    big = draw(box=(100, 50, 700, 850), width=40, size=1024)
    assert corr(to_model_input(np.asarray(big)), reference) > 0.97


def test_drawing_touching_the_edge() -> None:
    x = to_model_input(np.asarray(draw(box=(-5, -5, 405, 405), width=30)))
    check_output(x)


def test_thin_pen_is_thickened() -> None:
    x = to_model_input(np.asarray(draw(box=(20, 20, 380, 380), width=2)))
    check_output(x)
    assert stroke_width(x) >= 1.2


def test_photo_with_uneven_light_and_noise(reference: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    ink = 1.0 - np.asarray(draw(), np.float32) / 255  # 1 where the pen went
    yy, xx = np.mgrid[0:400, 0:400] / 400.0
    paper = 0.55 + 0.35 * xx + 0.05 * yy  # light falling from one side
    photo = paper * (1 - 0.7 * ink) + rng.normal(0, 0.03, ink.shape)
    photo = np.clip(photo * 255, 0, 255).astype(np.uint8)
    rgb = np.stack([photo, photo, (photo * 0.9).astype(np.uint8)], axis=-1)
    assert corr(to_model_input(rgb), reference) > 0.95


def test_specks_away_from_the_character_are_ignored(reference: np.ndarray) -> None:
    image = np.asarray(draw()).copy()
    image[380:382, 5:7] = 0  # a 2x2 speck in a corner
    image[10, 390] = 0
    assert corr(to_model_input(image), reference) > 0.99


# ---------------------------------------------------------------- blank, filled, tiny


def test_blank_canvas_is_nothing_drawn() -> None:
    with pytest.raises(NothingDrawn):
        to_model_input(np.full((400, 400, 3), 255, np.uint8))
    with pytest.raises(NothingDrawn):
        to_model_input(np.full((400, 400), 0.5, np.float32))


def test_faint_noise_only_is_nothing_drawn() -> None:
    rng = np.random.default_rng(2)
    noise = np.clip(240 + rng.normal(0, 2, (300, 300)), 0, 255).astype(np.uint8)
    with pytest.raises(NothingDrawn):
        to_model_input(noise)


def test_filled_canvas_is_nothing_drawn() -> None:
    with pytest.raises(NothingDrawn):
        to_model_input(np.zeros((400, 400, 3), np.uint8))
    mostly_black = np.zeros((400, 400), np.uint8)
    mostly_black[:8] = 255  # a white strip along the top edge: the rest reads as ink
    mostly_black[:, :8] = 255
    mostly_black[-8:] = 255
    mostly_black[:, -8:] = 255
    with pytest.raises(NothingDrawn, match="filled"):
        to_model_input(mostly_black)


def test_single_dot_never_crashes() -> None:
    for radius in (1, 4, 10):
        image = Image.new("L", (400, 400), 255)
        ImageDraw.Draw(image).ellipse((200 - radius, 200 - radius, 200 + radius, 200 + radius), fill=0)
        with contextlib.suppress(NothingDrawn):
            check_output(to_model_input(image))
    one_pixel = np.full((400, 400), 255, np.uint8)
    one_pixel[100, 100] = 0
    with pytest.raises(NothingDrawn):
        to_model_input(one_pixel)


# ---------------------------------------------------------------- input kinds


def test_pil_path_bytes_and_array_agree(tmp_path: Path, reference: np.ndarray) -> None:
    image = draw(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255))
    path = tmp_path / "four.png"
    image.save(path)
    for source in (image, path, str(path), path.read_bytes(), np.asarray(image)):
        np.testing.assert_allclose(to_model_input(source), reference, atol=1e-4)


def test_other_dtypes(reference: np.ndarray) -> None:
    grey = np.asarray(draw(), np.float32) / 255
    assert corr(to_model_input(grey), reference) > 0.999
    assert corr(to_model_input((grey * 65535).astype(np.uint16)), reference) > 0.999
    assert corr(to_model_input(grey > 0.5), reference) > 0.98
    assert corr(to_model_input(grey[..., None]), reference) > 0.999
    assert corr(to_model_input((grey * 255).astype(np.int64)), reference) > 0.999


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(100, np.uint8),
        np.zeros((2, 50, 50, 3), np.uint8),
        np.zeros((50, 50, 5), np.uint8),
        np.zeros((0, 50), np.uint8),
        np.array([["a", "b"], ["c", "d"]]),
        np.zeros((50, 50), np.complex64),
        np.full((50, 50), np.nan, np.float32),
        np.full((50, 50), -3.0),
        np.full((50, 50), 1000, np.int32),
        [[0, 1], [1, 0]],
        42,
        {"something": "else"},
    ],
    ids=lambda v: type(v).__name__ + str(getattr(v, "shape", "")),
)
def test_non_images_are_bad_images(bad: object) -> None:
    with pytest.raises(BadImage):
        to_model_input(bad)


def test_unreadable_files_are_bad_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for source in (text, tmp_path / "missing.png", b"\x89PNG garbage"):
        with pytest.raises(BadImage, match="cannot read image"):
            to_model_input(source)


def test_errors_share_a_base_class() -> None:
    assert issubclass(NothingDrawn, InputError) and issubclass(BadImage, InputError)
    assert issubclass(InputError, ValueError)


def test_huge_image_is_capped(reference: np.ndarray) -> None:
    big = draw(size=3000, box=(450, 300, 2250, 2700), width=110)
    assert max(big.size) > MAX_SIDE
    assert corr(to_model_input(np.asarray(big)), reference) > 0.97
    assert corr(to_model_input(big), reference) > 0.97


def test_too_many_pixels_is_refused() -> None:
    with pytest.raises(BadImage, match="too large"):
        to_model_input(np.zeros((7200, 7200), np.uint8))
    with pytest.raises(BadImage, match="too large"):
        to_model_input(Image.new("L", (10_000, 6_000)))


def test_phone_photo_orientation_is_applied(tmp_path: Path, reference: np.ndarray) -> None:
    stored = draw(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    stored.save(tmp_path / "photo.png", exif=exif)
    assert corr(to_model_input(tmp_path / "photo.png"), reference) > 0.99


def test_nothing_drawn_has_a_short_message() -> None:
    with pytest.raises(NothingDrawn) as caught:
        to_model_input(np.full((50, 50), 255, np.uint8))
    assert caught.value.message == "Nothing drawn yet: draw a character" and caught.value.detail
