"""The `vlacompile` command: thin click wrappers over the library.

A UserError (bad input a user can fix) and a usage error (a wrong or missing option) become one line
on stderr and exit status 2, no traceback.
"""

from __future__ import annotations

import click

from ..errors import UserError

# `vlacompile --help` lists the commands in the order a user runs them: look, calibrate and measure,
# compile, check, measure behaviour and speed, then deploy; `train` (how the embedded default was
# made) comes last.
ORDER = ("info", "predict", "calibrate", "fidelity", "build", "export", "validate", "eval", "bench", "engines",
         "package", "run", "train")


class Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # `vlacompile --bogus`: the group's own options
            click.echo(f"error: {exc.format_message()} (see `vlacompile --help`)", err=True)
            raise SystemExit(2) from None

    def list_commands(self, ctx) -> list[str]:
        known = [c for c in ORDER if c in self.commands]
        return known + sorted(c for c in self.commands if c not in known)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:  # raised while parsing a command's options
            sub = exc.ctx is not None and exc.ctx.parent is not None
            command = f"vlacompile {exc.ctx.info_name}" if sub else "vlacompile"
            click.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vlacompile")
def main():
    """Compile Vision-Language-Action policies (CogACT; pi0 through calibration, passes and eval) into fast
    inference artifacts."""


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
