"""Arguments of the benchmark's `python -m vlacompile.sim...` diagnostics: an optional `--model DIR`,
positional counts, and bad input reported the way the CLI reports it (one line, exit status 2, no
traceback)."""

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


def model_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the folder after a leading `--model`, or None for the embedded model; the arguments left)."""
    if argv[:1] != ["--model"]:
        return None, argv
    if len(argv) < 2:
        raise UserError("--model needs a folder `vlacompile train` wrote")
    return argv[1], argv[2:]


def cogact_model(folder: str | None):
    """(the CogACT model in eval mode: a folder `vlacompile train` wrote, or the embedded default;
    the cogact-tiny training recipe, whose batches the diagnostics build)."""
    from pathlib import Path

    from ..models import training_recipe
    from ..models.cogact.embedded import embedded_policy

    recipe = training_recipe("cogact-tiny")
    model = embedded_policy().model if folder is None else recipe.trained_model(Path(folder), "--model")
    return model.eval(), recipe


def cogact_policy(folder: str | None):
    """The CogACT policy (model and action statistics) of a folder `vlacompile train` wrote, checked
    against its record, or the embedded default."""
    from pathlib import Path

    from ..models.cogact.embedded import embedded_policy, is_trained_folder, trained_policy

    if folder is None:
        return embedded_policy()
    if not is_trained_folder(Path(folder)):
        raise UserError(f"--model {folder}: not a folder `vlacompile train` wrote (weights.safetensors, "
                        "dataset_statistics.json, training.json)")
    return trained_policy(Path(folder))


def run(main, argv: list[str] | None = None) -> None:
    """main(argv), with a UserError printed as one line and exit status 2."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
