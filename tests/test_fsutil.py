"""Writes that cannot happen (a full disk, a folder one may not write) are one line, and leave nothing."""

import subprocess

import pytest

from vlacompile.errors import UserError


def _mounted(tmp_path, options: str):
    """A real tmpfs with `options` (needs the privilege to mount one: skipped elsewhere)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    yield from _mounted(tmp_path, "size=256k")


@pytest.fixture
def read_only_disk(tmp_path):
    yield from _mounted(tmp_path, "ro,size=256k")


def test_an_export_onto_a_full_disk_is_one_line_and_leaves_nothing(tiny, compiled, trace_tensors, small_disk):
    from vlacompile.export import ExportConfig, export

    with pytest.raises(UserError, match=r"cannot write .*graphs \(No space left on device"):
        export(tiny, compiled.model, small_disk / "graphs", ExportConfig(), trace_tensors, compiled.provenance(),
               progress=False)
    assert list(small_disk.iterdir()) == []


def test_an_export_onto_a_read_only_file_system_is_one_line(tiny, compiled, trace_tensors, read_only_disk):
    from vlacompile.export import ExportConfig, export

    with pytest.raises(UserError, match=r"cannot write .*graphs \(Read-only file system"):
        export(tiny, compiled.model, read_only_disk / "graphs", ExportConfig(), trace_tensors, compiled.provenance(),
               progress=False)


def test_a_bundle_too_large_for_the_disk_is_refused_with_the_sizes(graphs, validated, small_disk, tmp_path):
    from vlacompile.package import package
    from vlacompile.runtime import extract

    _, archive = package(graphs, tmp_path / "bundle")
    with pytest.raises(UserError, match=r"needs [0-9.]+ MB to unpack and .* has 0.3 MB free"):
        extract(archive, small_disk)
    assert list(small_disk.iterdir()) == []


def test_a_report_under_a_file_is_refused_before_any_work(tmp_path):
    from vlacompile.fsutil import check_can_create, write_json

    (tmp_path / "notes").write_text("mine")
    with pytest.raises(UserError, match="notes is a file, not a folder"):
        check_can_create(tmp_path / "notes" / "fid.json")
    with pytest.raises(UserError, match="cannot write"):
        write_json(tmp_path / "notes" / "fid.json", {})
    assert (tmp_path / "notes").read_text() == "mine"
