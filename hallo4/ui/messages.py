"""What the app tells a newcomer, without Gradio: upload checks with the file's own name, optional
number fields ("empty = preset"), the Train tab's checklist (lite sizes, speech clips and Arena wording
are core modules: hallo4.portrait_size, speech_clip, system_labels).
The tab modules show these strings; tests call them directly.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import SAMPLE_RATE as SR
from ..errors import Hallo4Error, InputError
from ..speech_clip import speech_onset

log = logging.getLogger("hallo4.ui")

# ----------------------------------------------------------------------------------------------
# Messages without server paths
# ----------------------------------------------------------------------------------------------
# An absolute path: starts after a space, quote or bracket (so "wav/mp3/ogg" is left alone).
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s\\/()'\",:;]+)+[\\/]([^\s\\/()'\",:;]+)")


def public_message(exc: BaseException | str) -> str:
    """The message with every absolute path reduced to its file name (an upload's own name: Gradio keeps it)."""
    text = str(exc)
    if isinstance(exc, InputError) and exc.path:
        text = text.replace(exc.path, Path(exc.path).name)
    return _PATH.sub(lambda m: m.group(1), text)


def missing_inputs(portrait: Any, audio: Any) -> str | None:
    """One message naming every missing input, or None."""
    missing = [name for name, v in (("the portrait photo", portrait), ("the speech recording", audio)) if not v]
    if not missing:
        return None
    which = "both" if len(missing) == 2 else "it"
    return f"Missing: {' and '.join(missing)}. Upload {which} above, or click an example."


# ----------------------------------------------------------------------------------------------
# Upload checks
# ----------------------------------------------------------------------------------------------
def check_portrait(path: str | Path | None, *, hallo4_ready: bool = False) -> tuple[bool, str]:
    """(usable by lite, message) for an uploaded portrait: decodes it and looks for a face."""
    if not path:
        return False, ""
    from .. import face as F
    from .. import media

    name = Path(path).name
    try:
        img = media.load_image(path, name="portrait")
    except Hallo4Error as exc:
        return False, f"✗ {public_message(exc)}"
    analysis = F.analyze_face(np.asarray(img))
    if not analysis.found:
        fix = (
            "the hallo4 engine can still animate it from the whole image"
            if hallo4_ready
            else "use a front-facing photo where the face is clearly visible (at least ~100 px tall)"
        )
        return False, (
            f"✗ {name}: no face found ({img.width}x{img.height}). The lite engine animates a visible face: {fix}."
        )
    x0, y0, x1, y1 = analysis.box
    msg = f"✓ {name}: face found ({img.width}x{img.height}, face {x1 - x0}x{y1 - y0} px)."
    if analysis.warnings:
        msg += " " + " ".join(analysis.warnings)
    return True, msg


def check_audio(path: str | Path | None) -> tuple[bool, str]:
    """(usable, message) for an uploaded speech file: decodes it and measures where speech is."""
    if not path:
        return False, ""
    from .. import media

    name = Path(path).name
    try:
        if Path(path).stat().st_size == 0:
            return False, (
                f"✗ {name}: the file is empty (0 bytes). Upload a recording with speech (wav/mp3/m4a/flac/ogg)."
            )
        audio = media.load_audio(path, SR, name="speech")
    except Hallo4Error as exc:
        return False, f"✗ {public_message(exc)}"
    except OSError as exc:
        return False, f"✗ {name}: could not be read ({type(exc).__name__}). Upload it again."
    seconds = len(audio) / SR
    onset = speech_onset(audio)
    msg = f"✓ {name}: {seconds:.1f} s of audio"
    if onset >= 0.5:
        msg += f", speech starts at {onset:.1f} s"
    return True, msg + "."


# ----------------------------------------------------------------------------------------------
# "Empty = preset" fields
# ----------------------------------------------------------------------------------------------
def optional_number(
    value: Any, name: str, *, integer: bool = False, lo: float | None = None, hi: float | None = None
) -> float | int | None:
    """A field where empty means "use the preset": None for empty, else the number, range-checked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        num = float(str(value).strip())
    except ValueError:
        raise InputError(
            name, f"{value!r} is not a number", "Type a number, or leave it empty to use the preset."
        ) from None
    if integer:
        if num != int(num):
            raise InputError(name, f"{value!r} is not a whole number", "Type a whole number, or leave it empty.")
        num = int(num)
    if (lo is not None and num < lo) or (hi is not None and num > hi):
        raise InputError(
            name,
            f"{value} is out of range",
            f"Use a value from {lo:g} to {hi:g}, or leave it empty to use the preset.",
        )
    return num


# ----------------------------------------------------------------------------------------------
# Admin token and the Train tab's checklist
# ----------------------------------------------------------------------------------------------
def admin_token_required() -> bool:
    """The token box matters only when a token is configured or the server is reachable from other machines
    (then admin actions are locked without one; the rule lives in hallo4.admin)."""
    from .. import admin

    return bool(os.environ.get("HALLO4_ADMIN_TOKEN")) or not admin.local_only()


def admin_note() -> str:
    if admin_token_required():
        return (
            "Admin actions (start/stop a round, activate, settings, downloads) need the admin token "
            "(`HALLO4_ADMIN_TOKEN`)."
        )
    return "Served locally without `HALLO4_ADMIN_TOKEN`: admin actions need no token here."


MIN_PAIRS = 1  # the trainer accepts one decisive pair; a useful round wants ~100 or more


def train_needs() -> tuple[bool, str]:
    """(ready, Markdown checklist) of what a DPO round needs: the trainer, hallo4 weights, a GPU, votes."""
    from .. import studio

    st = studio.store()
    usable = len(st.usable_pairs())
    cuda = studio.cuda_available()
    rows = [
        (studio.trainer_available(), "the DPO trainer (`trainer/dpo.py`)", "not in this build"),
        (
            studio.hallo4_weights_present(),
            "the **hallo4** weights (it is the model a round refines)",
            "missing: get them in the Models tab",
        ),
        (cuda, "a CUDA GPU", "none found: a round on the CPU is impractically slow"),
        (
            usable >= MIN_PAIRS,
            f"decisive Arena votes: **{usable}** usable pair{'s' if usable != 1 else ''} "
            f"(at least {MIN_PAIRS}; ~100 or more for a useful round)",
            "vote A or B in the Arena",
        ),
    ]
    lines = ["**A training round needs:**", ""] + [
        f"- {'✓' if ok else '✗'} {what}" + ("" if ok else f": {why}") for ok, what, why in rows
    ]
    ready = all(ok for ok, _, _ in rows[:2]) and rows[3][0]  # a GPU is advised, not required
    return ready, "\n".join(lines)


def lite_train_needs() -> tuple[bool, str]:
    """(ready, Markdown checklist) of what a lite round needs: the lite trainer and enough lite votes. A CPU is
    enough (a round of 80 steps takes about a minute on 2 cores)."""
    from .. import studio

    have, skipped = studio.lite_votes()
    need = studio.lite_min_votes()
    rows = [
        (studio.trainer_available("lite"), "the lite DPO trainer (`trainer/lite_dpo.py`)", "not in this build"),
        (
            have >= need,
            f"decisive votes on lite pairs: **{have}** (at least {need})",
            "vote A or B on lite pairs in the Arena",
        ),
    ]
    lines = ["**A lite round needs** (any CPU):", ""] + [
        f"- {'✓' if ok else '✗'} {what}" + ("" if ok else f": {why}") for ok, what, why in rows
    ]
    left_out = "; ".join(f"{n} {why}" for why, n in skipped.items() if n)
    if left_out:
        lines.append(f"- decisive pairs left out: {left_out}")
    return all(ok for ok, _, _ in rows), "\n".join(lines)


def skeleton_summary(path: str | Path | None) -> str:
    """What Generate will use as body motion, in one line."""
    if not path:
        return "Body motion: idle (natural head sway and blinks made from the portrait)."
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            from ..skeleton import SkeletonSequence

            seq = SkeletonSequence.load(p)
            return f"Body motion: skeleton **{p.name}** ({seq.num_frames} frames, {seq.num_frames / seq.fps:.1f} s)."
        except Hallo4Error as exc:
            return f"Body motion: **{p.name}** cannot be used: {public_message(exc)}"
    return f"Body motion: rendered skeleton video **{p.name}**."
