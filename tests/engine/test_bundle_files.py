"""A bundle's files are read without following symbolic links (``format.open_inside``)."""

import os

import pytest

from viz_engine.bundles.format import links_in, open_inside


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "b" / "items" / "q" / "assets").mkdir(parents=True)
    (tmp_path / "b" / "items" / "q" / "assets" / "image.png").write_bytes(b"png")
    (tmp_path / "secret").write_text("root:x:0:0")
    return tmp_path / "b"


def test_a_regular_file_inside_the_folder_is_opened(folder):
    with open_inside(folder, "items/q/assets/image.png") as fh:
        assert fh.read() == b"png"
    assert links_in(folder) == []


@pytest.mark.parametrize("rel", ["../secret", "/etc/passwd", "items/../../secret", "items//q/assets/image.png",
                                 "items/q/assets/", "items/q/assets", "items/q/assets/none.png", "items/q\x00/x"])
def test_paths_that_leave_the_folder_or_are_not_files_are_refused(folder, rel):
    with pytest.raises(FileNotFoundError):
        open_inside(folder, rel)


@pytest.mark.parametrize("link", ["items/q/assets/image.png", "items/q/assets", "items"])
def test_a_link_at_any_part_of_the_path_is_refused_and_found(folder, link):
    target = folder / link
    moved = folder.parent / "moved"
    os.rename(target, moved)
    target.symlink_to(moved if link != "items/q/assets/image.png" else folder.parent / "secret")
    with pytest.raises(FileNotFoundError):
        open_inside(folder, "items/q/assets/image.png")
    assert links_in(folder) == [link]


def test_a_fifo_is_refused_without_blocking(folder):
    os.mkfifo(folder / "items" / "q" / "assets" / "pipe.png")
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        open_inside(folder, "items/q/assets/pipe.png")
