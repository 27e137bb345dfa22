"""Options shared by several commands, and table printing."""

from __future__ import annotations

import click

from ..models import preset_names


class OldNames(click.Option):
    """An option listed under its first name; the others are older spellings that still work."""

    def get_help_spec(self, ctx) -> str:
        names = self.opts
        self.opts = names[:1]
        try:
            return super().get_help_spec(ctx)
        finally:
            self.opts = names

model_option = click.option(
    "--model", "model", default=None, metavar="NAME|PATH",
    help=f"A preset ({', '.join(preset_names())}; default cogact-tiny, the embedded model; pi0-tiny is the "
         "embedded pi0) or a checkpoint folder: CogACT's released layout, or LeRobot's for pi0.",
)
preset_option = click.option(
    "--preset", type=click.Choice(preset_names()), default=None,
    help="Preset of a checkpoint folder whose dimensions cannot be inferred from its weights.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths), *map(fmt, cells[1:])])


def human(n: float, unit: str = "") -> str:
    """1.2e9 -> "1.20 B" for counts, "1.20 GFLOP" with a unit."""
    giga = "G" if unit else "B"
    for scale, suffix in ((1e12, "T"), (1e9, giga), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()
