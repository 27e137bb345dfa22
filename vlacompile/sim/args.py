"""Arguments of the benchmark's `python -m vlacompile.sim...` diagnostics: positional counts, and bad
input reported the way the CLI reports it (one line, exit status 2, no traceback)."""

from __future__ import annotations

import sys

from ..errors import UserError


def counts(argv: list[str], names: tuple[str, ...], defaults: tuple[int, ...]) -> list[int]:
    """Positive integers for `names`, in order; missing ones take their default."""
    if len(argv) > len(names):
        plural = "s" if len(names) > 1 else ""
        raise UserError(f"expected at most {len(names)} argument{plural} ({' '.join(n.upper() for n in names)}), "
                        f"got {len(argv)}")
    values = list(defaults)
    for k, text in enumerate(argv):
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"{names[k].upper()} must be a positive whole number, got {text!r}")
        values[k] = int(text)
    return values


def run(main, argv: list[str] | None = None) -> None:
    """main(argv), with a UserError printed as one line and exit status 2."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
