"""Output folders: one writer at a time, leftovers of interrupted writes cleaned, and an
interrupted package never leaves a folder and an archive of different settings."""

import json
import subprocess
import sys
import tarfile

import pytest
from click.testing import CliRunner

from vlacompile.cli import main
from vlacompile.errors import UserError
from vlacompile.output import claim
from vlacompile.package import package
from vlacompile.runtime import manifest

HOLD = ("import sys; from vlacompile.output import lock\n"
        "with lock(sys.argv[1]):\n"
        "    print('held', flush=True); sys.stdin.read()")


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(graphs, validated, tmp_path):
    out = tmp_path / "bundle"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # blocks until the other process holds the lock
        result = CliRunner().invoke(main, ["package", "--graphs", str(graphs), "--out", str(out)])
        assert result.exit_code == 2
        assert f"another vlacompile (pid {holder.pid}) is writing {out}" in result.output
        assert not out.exists()
    finally:
        holder.communicate("")
    assert holder.returncode == 0 and not (tmp_path / ".bundle.lock").exists()  # released and removed
    assert CliRunner().invoke(main, ["package", "--graphs", str(graphs), "--out", str(out)]).exit_code == 0


def test_leftovers_of_interrupted_writes_are_removed_by_the_next_one(graphs, validated, tmp_path):
    """What a killed export or package leaves: staging folders, swapped-out folders, a half archive."""
    stale = [tmp_path / ".bundle.k3j2.partial", tmp_path / ".bundle.x9.old", tmp_path / ".bundle.tar.gz.ab12.partial"]
    stale[0].mkdir()
    (stale[0] / "llm.fp32.onnx").write_bytes(b"half")
    stale[1].mkdir()
    stale[2].write_bytes(b"\0" * 1000)
    other = tmp_path / ".notes.partial"  # not a leftover of this output: untouched
    other.write_text("mine")
    package(graphs, tmp_path / "bundle")
    assert not any(p.exists() for p in stale) and other.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.partial", "bundle", "bundle.tar.gz"]


def test_an_interrupted_package_keeps_the_previous_folder_and_archive_together(graphs, validated, tmp_path,
                                                                                monkeypatch):
    out = tmp_path / "bundle"
    package(graphs, out)
    before = manifest.read(out)["digest"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the archive is written

    monkeypatch.setattr(tarfile.TarFile, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        package(graphs, out, force=False)
    monkeypatch.undo()
    with tarfile.open(tmp_path / "bundle.tar.gz") as tar:
        archived = json.loads(tar.extractfile("bundle/manifest.json").read())
    assert manifest.read(out)["digest"] == archived["digest"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundle.tar.gz"]


def test_claim_replaces_only_its_own_kind_of_output(graphs, validated, tmp_path):
    folder = tmp_path / "bundle"
    package(graphs, folder)
    with claim(folder, "bundle"):
        pass  # a previous bundle may be replaced
    with pytest.raises(UserError, match="is a bundle"):
        with claim(folder, "graphs"):
            pass
    (folder / "engines").mkdir()
    (folder / "engines" / "mine.engine").write_bytes(b"built on the device")
    with pytest.raises(UserError, match=r"holds files vlacompile did not write \(engines/mine.engine\)"):
        with claim(folder, "bundle"):
            pass
    with claim(folder, "bundle", force=True):
        pass
