"""Run every benchmark and print figures beside a baseline measured in the same run."""

from __future__ import annotations

from .pipeline import main

main()
