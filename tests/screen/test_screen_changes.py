"""Finding changed areas: pixels that really changed, noise dropped, neighbours merged."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from labeeb.screen.changes import crop_pair, detect, find_changes
from labeeb.config import ScreenConfig
from labeeb.screen import MssScreen, Rect


def desktop(width: int = 800, height: int = 600) -> Image.Image:
    """A busy but static picture: gradients and text, as screens have."""
    image = Image.new("RGB", (width, height), (30, 60, 90))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 40):
        draw.line((x, 0, x, height), fill=(40, 70, 100))
    draw.rectangle((20, 20, 300, 200), fill=(240, 240, 240))
    draw.text((30, 30), "Editor - notes.txt", fill=(0, 0, 0))
    return image


def changed(image: Image.Image, box: tuple[int, int, int, int], fill=(200, 30, 30)) -> Image.Image:
    out = image.copy()
    ImageDraw.Draw(out).rectangle(box, fill=fill)
    return out


def test_identical_pictures_have_no_changes():
    report = find_changes(desktop(), desktop())
    assert not report and report.changes == [] and report.noise_pixels == 0


def test_one_changed_area_is_found_exactly():
    before = desktop()
    after = changed(before, (400, 300, 499, 379))  # PIL boxes include the far edge
    (change,) = find_changes(before, after).changes
    assert change.rect == Rect(400, 300, 100, 80) and change.pixels == 8000


def test_a_blinking_text_cursor_and_a_ticking_clock_are_noise():
    before = desktop()
    after = changed(before, (100, 100, 101, 117), fill=(0, 0, 0))  # a 2x18 text cursor
    draw = ImageDraw.Draw(after)
    draw.rectangle((740, 4, 796, 20), fill=(30, 60, 90))
    draw.text((742, 6), "12:42", fill=(255, 255, 255))  # the panel clock ...
    ImageDraw.Draw(before).text((742, 6), "12:41", fill=(255, 255, 255))  # ... one minute earlier
    report = find_changes(before, after)
    assert not report and report.noise_pixels > 0
    # with a lower noise floor the same differences are real changes
    assert len(find_changes(before, after, min_pixels=5).changes) == 2


def test_faint_differences_below_the_threshold_are_ignored():
    before = desktop()
    after = Image.eval(before, lambda v: min(255, v + 6))  # a slight brightness shift everywhere
    assert not find_changes(before, after)
    assert find_changes(before, after, threshold=4)


def test_nearby_pieces_merge_and_distant_ones_stay_apart():
    before = desktop()
    after = changed(before, (400, 300, 439, 319))
    after = changed(after, (446, 300, 489, 319))  # 6 px apart: one line of new text
    after = changed(after, (50, 450, 129, 529))  # far away: another change
    report = find_changes(before, after)
    assert [c.rect for c in report.changes] == [Rect(50, 450, 80, 80), Rect(400, 300, 90, 20)]
    assert [c.pixels for c in report.changes] == [6400, 40 * 20 + 44 * 20]


def test_overlapping_boxes_are_merged_into_one():
    before = desktop()
    after = changed(before, (100, 300, 299, 309))  # an L shape whose pieces' boxes overlap
    after = changed(after, (100, 310, 109, 499))
    (change,) = find_changes(before, after, merge_gap=0).changes
    assert change.rect == Rect(100, 300, 200, 200)


def test_ignored_regions_and_screen_coordinates():
    before = desktop()
    after = changed(before, (700, 0, 799, 29))  # where the clock is
    config = ScreenConfig(ignore_regions=["1500,0,100,30"])  # in screen pixels
    # the picture shows the screen area starting at 800,0
    assert not detect(before, after, config, origin=Rect(800, 0, 800, 600))
    assert detect(before, after, config, origin=Rect(0, 0, 800, 600))
    report = detect(before, after, ScreenConfig(change_min_pixels=10_000), origin=None)
    assert not report  # 3000 changed pixels are below this noise floor


def test_different_sizes_are_refused_clearly():
    with pytest.raises(ValueError, match=r"differ in size \(800x600 and 640x480\)"):
        find_changes(desktop(), desktop(640, 480))


def test_description_names_the_place_in_words_and_screen_pixels():
    before = desktop()
    report = find_changes(before, changed(before, (20, 500, 119, 579)))
    assert report.describe() == ["bottom left (x 20, y 500, 100x80 px)"]
    assert report.describe(Rect(1280, 0, 800, 600)) == ["bottom left (x 1300, y 500, 100x80 px)"]
    assert report.to_dict(Rect(1280, 0, 800, 600)) == [
        {"x": 1300, "y": 500, "width": 100, "height": 80, "pixels": 8000, "where": "bottom left"}
    ]


def test_crops_hold_the_change_and_a_margin_of_context():
    before = desktop()
    after = changed(before, (400, 300, 499, 379))
    (change,) = find_changes(before, after).changes
    crop_before, crop_after = crop_pair(before, after, change, margin=16)
    assert crop_before.size == crop_after.size == (132, 112)
    assert crop_after.getpixel((66, 56)) == (200, 30, 30) and crop_before.getpixel((66, 56)) != (200, 30, 30)


def test_a_new_window_on_a_real_screen_is_the_one_change(xserver):
    screen = MssScreen()
    xserver.show("Unchanged window", 700, 500, title="Static")
    before = screen.grab()
    window = xserver.show("Error: file not found", 150, 120, title="Error")
    after = screen.grab()
    (change,) = find_changes(before.image, after.image).changes
    # the change is the new window (X may draw a border pixel around it)
    assert change.rect.intersect(window.rect) == window.rect
    assert change.rect.padded(-2, change.rect).area <= window.rect.area <= change.rect.area
    assert not find_changes(after.image, screen.grab().image)
