"""Dataset checks and the grouped split, on datasets the tests make."""

import shutil
from pathlib import Path
from collections import Counter

import pytest
from PIL import Image

from tests.conftest import jpeg_bytes, make_dataset, photo
from wastesort.data import DataError, Item, grouped_split, scan, training_items


def test_clean_dataset_is_reported_with_counts(dataset):
    report = scan(dataset)
    assert report.labels == ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    assert set(report.class_counts.values()) == {8}
    assert not (report.unreadable or report.conflicts() or report.duplicate_groups())
    assert len(training_items(report)) == 48


def test_problems_are_found_and_counted(dataset):
    (dataset / "glass" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (dataset / "glass" / "empty.png").write_bytes(b"")
    (dataset / "glass" / "notes.txt").write_text("not an image")
    photo((1, 2, 3), seed=9).convert("CMYK").save(dataset / "metal" / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 8
    (dataset / "paper" / "rotated.jpg").write_bytes(jpeg_bytes(photo((9, 9, 9), seed=5), exif=exif.tobytes()))
    Image.new("RGB", (10, 10)).save(dataset / "paper" / "tiny.png")
    shutil.copy(dataset / "plastic" / "plastic0.jpg", dataset / "plastic" / "copy.jpg")
    shutil.copy(dataset / "metal" / "metal1.jpg", dataset / "trash" / "mislabelled.jpg")
    (dataset / "empty_class").mkdir()

    report = scan(dataset)
    d = report.to_dict()
    assert sorted(u["path"] for u in d["unreadable"]) == ["glass/broken.jpg", "glass/empty.png"]
    assert d["ignored"] == ["glass/notes.txt"]
    assert d["odd_modes"] == {"CMYK": ["metal/cmyk.jpg"]}
    assert d["exif_rotated"] == ["paper/rotated.jpg"]
    assert d["tiny"] == ["paper/tiny.png"]
    assert d["empty_classes"] == ["empty_class"]
    assert sorted(d["conflicts"][0]) == ["metal/metal1.jpg", "trash/mislabelled.jpg"]
    assert len(d["duplicates"]) == 2
    summary = report.summary()
    assert "label conflicts      1" in summary and "unreadable           2" in summary


def test_training_refuses_an_empty_class(dataset):
    (dataset / "aluminium").mkdir()
    with pytest.raises(DataError, match="aluminium"):
        training_items(scan(dataset))


def test_training_refuses_or_drops_conflicting_labels(dataset):
    shutil.copy(dataset / "metal" / "metal1.jpg", dataset / "trash" / "mislabelled.jpg")
    report = scan(dataset)
    with pytest.raises(DataError, match="filed under two classes"):
        training_items(report, drop_conflicts=False)
    items = training_items(report, drop_conflicts=True)
    assert len(items) == 47  # both copies of the conflicting image are left out
    assert not any(i.path.name in ("metal1.jpg", "mislabelled.jpg") for i in items)


def test_training_refuses_a_mostly_broken_folder(dataset):
    for i in range(5):
        (dataset / "glass" / f"bad{i}.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="do not decode"):
        training_items(scan(dataset))


def test_same_label_duplicates_are_kept_once(dataset):
    shutil.copy(dataset / "glass" / "glass0.jpg", dataset / "glass" / "again.jpg")
    assert len(training_items(scan(dataset))) == 48


def test_fingerprint_depends_on_content_and_labels_not_paths(dataset, tmp_path):
    before = scan(dataset).fingerprint
    moved = tmp_path / "elsewhere"
    shutil.copytree(dataset, moved)
    (moved / "glass" / "glass0.jpg").rename(moved / "glass" / "renamed.jpg")
    assert scan(moved).fingerprint == before
    shutil.move(moved / "glass" / "renamed.jpg", moved / "paper" / "renamed.jpg")
    assert scan(moved).fingerprint != before


def _items(n_per_class: int) -> list[Item]:
    return [Item(path=Path(f"/d/{label}/{label}{i}.jpg"), label=label,
                 sha256=f"{label}-{i}")
            for label in ("a", "b", "c") for i in range(1, n_per_class + 1)]


def test_grouped_split_keeps_blocks_together_and_is_deterministic():
    items = _items(200)
    is_valid = grouped_split(items, valid_pct=0.2, seed=7, block=10)
    assert is_valid == grouped_split(list(items), valid_pct=0.2, seed=7, block=10)
    assert is_valid != grouped_split(items, valid_pct=0.2, seed=8, block=10)
    share = Counter(i.label for i, v in zip(items, is_valid) if v)
    assert all(35 <= n <= 45 for n in share.values()), share
    blocks: dict = {}
    for item, valid in zip(items, is_valid):
        number = int(item.path.stem[1:])
        blocks.setdefault((item.label, number // 10), set()).add(valid)
    assert all(len(sides) == 1 for sides in blocks.values())


def test_grouped_split_puts_identical_content_on_one_side():
    items = _items(100)
    # the same bytes filed far apart: they must land on the same side
    items[5] = Item(items[5].path, items[5].label, "shared")
    items[95] = Item(items[95].path, items[95].label, "shared")
    items[250] = Item(items[250].path, items[250].label, "shared")
    for seed in range(20):
        is_valid = grouped_split(items, valid_pct=0.3, seed=seed)
        assert is_valid[5] == is_valid[95] == is_valid[250]


def test_real_dataset_layout_works_for_any_folder(tmp_path):
    root = make_dataset(tmp_path / "x", per_class=3)
    shutil.rmtree(root / "trash")
    report = scan(root)
    assert report.labels == ["cardboard", "glass", "metal", "paper", "plastic"]
