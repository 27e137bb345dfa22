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
    from .calibrate import calibrate
    from .fidelity import fidelity
    from .info import info
    from .predict import predict

    for command in (predict, info, calibrate, fidelity):
        main.add_command(command)


_register()
