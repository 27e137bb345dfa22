from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--graphs", type=click.Path(path_type=Path, file_okay=False), default="graphs", show_default=True,
              help="Graphs folder written by export / build (validated, so the parity files come along).")
@click.option("--engines", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also ship these engines (built for the target device with `vlacompile engines`).")
@click.option("--onnx/--no-onnx", default=True, show_default=True,
              help="Ship the ONNX graphs (the device can then build its own engines).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default="bundle", show_default=True,
              help="Bundle folder; the archive is <out>.tar.gz beside it. An existing one is replaced only if it is "
                   "a previous bundle holding nothing else (see --force).")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds files vlacompile did not write (they are deleted).")
@click.option("--allow-unvalidated", is_flag=True,
              help="Package graphs whose validation did not complete or failed (the bundle says so).")
def package(graphs, engines, onnx, out, force, allow_unvalidated):
    """Write one bundle (a folder and a .tar.gz) to copy onto an edge device."""
    from ..package import package as run
    from ..runtime import manifest as manifest_io

    folder, archive = run(graphs, out, engines, onnx, force, allow_unvalidated)
    files = manifest_io.read(folder)["files"]
    size = sum((folder / n).stat().st_size for n in files)
    click.echo(f"wrote {folder}/ ({len(files)} files, {size / 1e6:.1f} MB, each with its sha256 in manifest.json) "
               f"and {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
