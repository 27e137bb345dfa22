"""The `vlacompile` command: thin click wrappers over the library.

A UserError (bad input a user can fix) becomes one line on stderr and exit status 2, no traceback.
"""

from __future__ import annotations

import click

from ..errors import UserError


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vlacompile")
def main():
    """Compile diffusion Vision-Language-Action policies (CogACT) into fast inference artifacts."""


def _register():
    from .bench import bench
    from .build import build
    from .calibrate import calibrate
    from .engines import engines
    from .eval import eval_cmd
    from .export import export_cmd
    from .fidelity import fidelity
    from .info import info
    from .package import package
    from .predict import predict
    from .run import run_cmd
    from .train import train
    from .validate import validate

    for command in (build, predict, info, calibrate, export_cmd, validate, fidelity, eval_cmd, bench, engines, package,
                    run_cmd, train):
        main.add_command(command)


_register()
