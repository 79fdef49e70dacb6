"""Sizes, durations and counts as people write them in settings: ``512M``, ``10m``.

Shared by the command-line settings (``ministry.config``) and the ``[mirror]``
table (``ministry.core.mirror_config``), so both accept the same spellings.
"""

from __future__ import annotations

import re
from typing import Any

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(value: Any) -> int:
    """``1G``, ``512M``, ``50G``, ``1048576`` (bytes) -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(value), re.IGNORECASE)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"expected a size such as 1G, 512M or 1048576, not {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def parse_duration(value: Any) -> float:
    """``10m``, ``3d``, ``90s``, ``1h``, ``600`` (seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 10m, 1h or 3d, not {value!r}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def parse_timeout(value: Any) -> float:
    """A duration that must be more than zero (a zero timeout would fail every call)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


def parse_count(value: Any) -> int:
    """A whole number more than zero, such as ``1000``."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) <= 0:
        raise ValueError(f"expected a whole number more than zero, not {value!r}")
    return int(text)
