"""The build report: what was pruned and what it cost, as one self-contained HTML file."""

from .data import report_data
from .html import write_report

__all__ = ["report_data", "write_report"]
