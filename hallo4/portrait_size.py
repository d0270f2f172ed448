"""The lite engine's canvas from a quality preset and the portrait: the warp is cheap, so the preset's
long side is kept, but never above the photo's own (no upscaling). Core code (no UI): the studio uses it,
the UI re-exports it."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("hallo4.portrait_size")


def lite_size(preset_size: int, portrait: str | Path | None) -> int:
    """The lite engine's long side for a preset: the preset's, never above the portrait's own long side
    (no upscaling), so a 1024x1536 photo at "fast" becomes 512x768 rather than 256x384."""
    if not portrait:
        return preset_size
    try:
        from PIL import Image

        with Image.open(portrait) as im:
            return int(min(preset_size, max(im.size)))
    except (OSError, ValueError) as exc:  # unreadable image: the real load reports it properly (with its name)
        log.debug("lite_size: could not read %s (%s); using the preset's size", portrait, exc)
        return preset_size
