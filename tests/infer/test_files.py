import numpy as np
import pytest
from PIL import Image

from pixforge.data.image_io import ImageError
from pixforge.infer.files import expand_inputs, output_paths


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / name)
    return folder


def test_a_file_named_twice_is_one_input(tmp_path):
    folder = _images(tmp_path / "in", ["a.png", "b.png"])
    files = expand_inputs([folder, folder, folder / "a.png", tmp_path / "in" / ".." / "in" / "b.png"])
    assert [f.name for f in files] == ["a.png", "b.png"]
    assert [p.name for p in output_paths(files, tmp_path / "out")] == ["a.png", "b.png"]


def test_distinct_files_sharing_a_stem_get_distinct_outputs(tmp_path):
    _images(tmp_path / "x", ["a.png"])
    _images(tmp_path / "y", ["a.jpg"])
    files = expand_inputs([tmp_path / "x", tmp_path / "y"])
    assert [p.name for p in output_paths(files, tmp_path / "out")] == ["a.png", "a_1.png"]


def test_an_empty_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="empty: folder holds no images"):
        expand_inputs([tmp_path / "empty"])
