"""Mouth shape from speech (hallo4.articulation) on real synthetic speech made with espeak-ng."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from hallo4 import face as F
from hallo4 import media
from hallo4.articulation import ArticulationConfig, articulate
from hallo4.engines.lite import FaceRig

SR = 16000
NO_HEAD = np.zeros(3, np.float32)


def speak(tmp_path, text: str, lead_silence: float = 0.0) -> np.ndarray:
    """Synthetic speech from espeak-ng (a system package listed in packages.txt), written into tmp_path."""
    assert shutil.which("espeak-ng"), "espeak-ng is missing: apt-get install espeak-ng (it is listed in packages.txt)"
    wav = tmp_path / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True)
    audio = media.load_audio(wav, SR)
    return np.concatenate([np.zeros(int(lead_silence * SR), np.float32), audio])


@pytest.fixture(scope="module")
def hopper_rig(hopper_path):
    img = np.asarray(media.load_image(hopper_path).resize((436, 512)))
    return FaceRig(img, F.analyze_face(img, require=True).landmarks)


def _lip_gap(rig, open_amt: float, spread: float = 0.0) -> float:
    """Largest inner-lip gap along the mouth, in face heights, for a rendered mouth shape."""
    dst = rig.landmarks_at(open_amt, spread, 0.0, NO_HEAD)
    pairs = [(82, 87), (13, 14), (312, 317), (81, 178), (311, 402)]
    return max(dst[b, 1] - dst[a, 1] for a, b in pairs) / rig.face_h


@pytest.mark.parametrize("word", ["papa", "mama", "baba"])
def test_lips_close_on_bilabials(tmp_path, hopper_rig, word):
    """Between the two vowels of papa / mama / baba the lips meet (and before the first one)."""
    art = articulate(speak(tmp_path, word, lead_silence=0.3), SR)
    vowels = np.flatnonzero(art.open > 0.3)
    assert len(vowels) >= 2
    # Two vowel nuclei separated by the consonant: find the gap in the run of open frames.
    split = np.flatnonzero(np.diff(vowels) > 1)
    assert len(split) == 1, art.open
    first_end, second_start = vowels[split[0]], vowels[split[0] + 1]
    between = art.open[first_end + 1 : second_start]
    assert len(between) >= 2 and between.min() < 0.02  # shut for the closure, held at least two frames
    shut = np.flatnonzero(art.open[first_end + 1 : second_start] < 0.02)
    assert _lip_gap(hopper_rig, float(art.open[first_end + 1 + shut[0]])) < 0.004  # rendered lips touch
    assert art.open[: vowels[0]].min() < 0.02  # the word-initial consonant is closed too


def _onset_frame(audio: np.ndarray) -> int:
    """The video frame in which the sound starts: the first 10 ms above -30 dB of the peak."""
    sub = SR // 100
    m = len(audio) // sub
    db = 20 * np.log10(np.sqrt((audio[: m * sub].reshape(m, sub) ** 2).mean(1)) + 1e-9)
    return int(np.flatnonzero(db > db.max() - 30)[0]) * sub * 25 // SR


@pytest.mark.parametrize("word", ["papa", "baba", "mama", "pea", "people"])
def test_phrase_initial_bilabial_is_not_anticipated(tmp_path, word):
    """After a pause the lips stay shut through a "p" / "b" / "m" closure and part at the release: the
    two-frame anticipation (which a vowel gets) must not open them before the sound."""
    audio = speak(tmp_path, word, lead_silence=0.3)
    art = articulate(audio, SR)
    k = _onset_frame(audio)
    assert art.open[:k].max() < 0.02, (k, art.open[k - 3 : k + 2])
    assert art.open[k : k + 4].max() > 0.1  # and it does open once the sound is there


def test_ee_is_spread_and_oo_is_rounded(tmp_path, hopper_rig):
    """A sustained "ee" gives a mouth wider relative to its opening than "oo" does."""
    ratios = {}
    for name, text in (("ee", "[[i::::::]]"), ("oo", "[[u::::::]]")):
        art = articulate(speak(tmp_path, text), SR)
        voiced = np.flatnonzero(art.open > 0.05)
        mid = voiced[len(voiced) // 4 : 3 * len(voiced) // 4]
        o, s = float(np.median(art.open[mid])), float(np.median(art.spread[mid]))
        dst = hopper_rig.landmarks_at(o, s, 0.0, NO_HEAD)
        width = np.linalg.norm(dst[308, :2] - dst[78, :2])
        height = dst[14, 1] - dst[13, 1]
        ratios[name] = (width / height, s)
    assert ratios["ee"][1] > 0.5 and ratios["oo"][1] < -0.6, ratios
    assert ratios["ee"][0] > 1.4 * ratios["oo"][0], ratios
    assert ratios["oo"][0] < 3.8, ratios  # a round opening, not a slit with narrowed corners


def test_mouth_moves_before_the_sound(tmp_path):
    """Coarticulation: the mouth starts opening about two frames before the vowel is heard."""
    audio = speak(tmp_path, "[[A::::]]", lead_silence=0.5)
    art = articulate(audio, SR)
    # The sound onset from the waveform itself: the first 40 ms frame above -30 dB of the peak.
    hop = SR // 25
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    db = 20 * np.log10(np.sqrt((frames**2).mean(1)) + 1e-9)
    onset = int(np.flatnonzero(db > db.max() - 30)[0])
    moving = int(np.flatnonzero(art.open > 0.02)[0])
    assert 1 <= onset - moving <= 3, (onset, moving, art.open[onset - 4 : onset + 3])
    assert art.open[: onset - 4].max() == 0.0  # silence before that: lips shut


def test_no_one_frame_flicker_and_real_articulation_on_a_story(examples_dir):
    audio = media.load_audio(examples_dir / "audio" / "story.wav", SR)
    art = articulate(audio, SR)
    o = art.open
    # A one-frame flicker: a frame sticking out above (or below) both of its neighbours by 0.3
    # (0.3 = a third of a wide "ah"; a syllable's peak rises and falls over several frames).
    above = o[1:-1] - np.maximum(o[:-2], o[2:])
    below = np.minimum(o[:-2], o[2:]) - o[1:-1]
    flicker = (above > 0.3) | (below > 0.3)
    assert not flicker.any(), np.flatnonzero(flicker)
    # Closures last at least two frames.
    c = np.concatenate([[0], (art.closure > 0).astype(int), [0]])
    starts, ends = np.flatnonzero(np.diff(c) == 1), np.flatnonzero(np.diff(c) == -1)
    assert (ends - starts).min() >= 2
    # Not a loudness follower: spread varies, and the opening is not just the envelope.
    assert art.spread.max() > 0.5 and art.spread.min() < -0.3
    env = media.load_audio(examples_dir / "audio" / "story.wav", SR)
    from hallo4.audio_features import speech_envelope

    r = np.corrcoef(speech_envelope(env, SR), o)[0, 1]
    assert r < 0.9, r


def test_silence_and_tiny_clips():
    """Digital silence keeps the lips shut (the level is not only relative); one-frame clips work."""
    from hallo4.audio_features import num_video_frames

    silent = articulate(np.zeros(SR, np.float32), SR)
    assert silent.open.max() == 0.0 and silent.closure.min() == 1.0
    for samples in (100, 700, 1300):
        art = articulate(np.random.default_rng(0).normal(0, 0.1, samples).astype(np.float32), SR)
        assert len(art.open) == len(art.spread) == num_video_frames(samples, SR) and np.isfinite(art.open).all()


@pytest.mark.parametrize("word", ["afa", "ava", "ifi", "often"])
def test_f_and_v_tuck_the_lower_lip_under_the_upper_teeth(tmp_path, hopper_rig, word):
    """ "f"/"v" are not "p"/"b": the lips do not shut; the upper teeth show and rest on the lower lip."""
    art = articulate(speak(tmp_path, word, lead_silence=0.3), SR)
    labio = np.flatnonzero(art.labiodental > 0.5)
    assert len(labio) >= 2, art.labiodental
    i = int(labio[len(labio) // 2])
    assert art.open[i] > 0.05  # a sliver open, not shut
    dst = hopper_rig.landmarks_at(float(art.open[i]), float(art.spread[i]), 0.0, NO_HEAD, float(art.labiodental[i]))
    lay = hopper_rig.mouth.layers(dst, (hopper_rig.h, hopper_rig.w), bite=float(art.labiodental[i]))
    assert lay is not None
    # Down the middle of the mouth, the teeth fill the opening to the lower lip (its last cavity row).
    cx = int(round(dst[F.LOWER_LIP_INNER_MID, 0])) - lay.x0
    for col in range(cx - 3, cx + 4):
        rows = np.flatnonzero(lay.cavity[:, col] > 0.5)
        assert len(rows) and lay.teeth[rows[-1], col] > 0.5 * lay.cavity[rows[-1], col], (col, lay.teeth[:, col])


@pytest.mark.parametrize("word", ["apa", "aba", "ama", "asa"])
def test_stops_nasals_and_s_are_not_labiodental(tmp_path, word):
    art = articulate(speak(tmp_path, word, lead_silence=0.3), SR)
    assert art.labiodental.max() == 0.0, art.labiodental


@pytest.mark.parametrize("word", ["fa", "fee", "five", "va", "very"])
def test_phrase_initial_f_and_v_start_on_the_teeth(tmp_path, word):
    """After a pause there is no dip to find: the frication itself says "f"/"v". The lower lip is on the upper
    teeth from before the sound through the frication (neither anticipating the vowel nor shut like a "p")."""
    audio = speak(tmp_path, word, lead_silence=0.3)
    art = articulate(audio, SR)
    k = _onset_frame(audio)
    assert (art.labiodental[k - 2 : k + 1] == 1.0).all(), (k, art.labiodental[k - 3 : k + 3])
    assert np.allclose(art.open[k - 2 : k + 1], ArticulationConfig().labiodental_open), art.open[k - 3 : k + 3]
    assert art.open[k : k + 6].max() > 0.25  # then the vowel opens


@pytest.mark.parametrize("word", ["pa", "ba", "bee", "mom", "sa", "sha", "think", "ta", "ha", "who", "a", "ee"])
def test_other_phrase_starts_are_not_labiodental(tmp_path, word):
    art = articulate(speak(tmp_path, word, lead_silence=0.3), SR)
    assert art.labiodental.max() == 0.0, art.labiodental
