"""Containers that exist only so that parameter names match LeRobot's released keys."""

from __future__ import annotations

from torch import nn


def holder(**children: nn.Module) -> nn.Module:
    """A bare module holding `children` under their names; it has no forward of its own."""
    module = nn.Module()
    for name, child in children.items():
        module.add_module(name, child)
    return module
