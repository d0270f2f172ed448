"""Per-frame mouth shape from speech, computed from the audio alone (no downloaded weights).

The lite engine used to open the mouth with loudness. Real mouths do more, and the acoustics say
which: the jaw opening follows the first formant (F1 is high for "ah", low for "ee"/"oo"), spread
vs rounded lips follow the second (F2 high and F1 low = "ee", both low = "oo"), and the lips shut
on bilabial stops and nasals ("p", "b", "m": a short silence, a voice bar or a nasal murmur) and on
silence. Speakers move the mouth before the sound comes (coarticulation), so onsets lead the
audio by about two frames; closures are held at least two frames so nothing flickers for one frame.

Hand-written on purpose: no maintained library maps speech to lip shapes without a learned model.
The acoustic measures come from `hallo4.audio_features.articulatory_features` (LPC formants, level dips, nasal murmur).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_features import ArticulatoryFeatures, articulatory_features
from .constants import FPS, SAMPLE_RATE


@dataclass(frozen=True)
class ArticulationConfig:
    """Tuning of the speech -> mouth mapping (defaults: adult speech at 25 fps)."""

    lead_frames: int = 2  # the mouth starts moving this many frames before the sound
    silence_db: float = -32.0  # below this (re the loud part of the clip) the lips rest closed
    stop_dip_db: float = 20.0  # a dip this deep below the speech around it is a stop closure
    stop_level_db: float = -16.0  # ... when the frame itself is at least this quiet
    murmur_share: float = 0.8  # energy share below 400 Hz of a nasal / voice bar ("m", "b")
    murmur_dip_db: float = 8.0  # ... and it is this much quieter than the vowels around it
    min_closure_frames: int = 2  # a closure is held at least this long (no 1-frame blink of the lips)
    max_rise_per_frame: float = 0.5  # the jaw opens at most this much per frame (0..1 scale)
    max_peak: float = 0.25  # ... and no single frame stands more than this above both neighbours
    consonant_open: float = 0.22  # opening for a non-vowel, non-closing sound ("s", "t", "k") at full level
    onset_pause_s: float = 0.1  # speech after this much silence starts a phrase (its first sound is checked)
    burst_rise_db: float = 6.0  # a "p" release: the first 10 ms this much quieter than 30 ms later...
    burst_low_share: float = 0.5  # ...with at least this share of its energy below 1.5 kHz ("t", "k", "f" are higher)
    burst_high_share: float = 0.15  # ...and at most this share above 3.5 kHz
    fricative_flatness: float = 0.4  # a closure-deep dip this noisy over 1-8 kHz is "f"/"v"/"th", not a stop
    fricative_high_share: float = 0.3  # ... with this share above 3 kHz ("f", "th"), or a voice bar under it ("v")
    voiced_fricative_flatness: float = 0.3  # a phrase-initial "v": this noisy over its voice bar
    labiodental_open: float = 0.12  # the jaw opening of "f"/"v": the lower lip rests on the upper teeth


@dataclass
class Articulation:
    """Per-frame mouth targets. open: 0 (lips together) .. ~1 (wide "ah"); spread: -1 rounded .. +1 spread;
    closure: 0..1, 1 where the lips must be shut; labiodental: 0..1, the lower lip tucked under the upper
    teeth ("f", "v")."""

    open: np.ndarray
    spread: np.ndarray
    closure: np.ndarray
    labiodental: np.ndarray | None = None

    def as_tracks(self) -> dict[str, np.ndarray]:
        tracks = {"open": self.open, "spread": self.spread, "closure": self.closure}
        if self.labiodental is not None:
            tracks["labiodental"] = self.labiodental
        return tracks


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def closure_track(
    feats: ArticulatoryFeatures, cfg: ArticulationConfig = ArticulationConfig(), include_silence: bool = True
) -> np.ndarray:
    """1 on frames where the lips are shut (stop closure, nasal murmur / voice bar, and silence), else 0.

    Runs shorter than `min_closure_frames` are widened towards their quieter neighbour: a real
    closure lasts 60-100 ms, and a one-frame closure would read as a flicker.
    """
    silence = feats.level_db < cfg.silence_db
    # Stops and nasals are judged on 10 ms sub-frames; a video frame is closed when at least 20 ms
    # of it is, or 10 ms of it and 10 ms of a neighbour (a short closure across a frame boundary).
    stop = (feats.sub_dip > cfg.stop_dip_db) & (feats.sub_level_db < cfg.stop_level_db)
    nasal = (feats.sub_murmur > cfg.murmur_share) & (feats.sub_dip_either > cfg.murmur_dip_db)
    n = len(feats.level_db)
    frac = np.bincount(feats.sub_frame_of, weights=(stop | nasal).astype(float), minlength=n)[:n]
    frac /= np.maximum(np.bincount(feats.sub_frame_of, minlength=n)[:n], 1)
    some = frac >= 0.25
    paired = some & (np.concatenate([[False], some[:-1]]) | np.concatenate([some[1:], [False]]))
    consonant = (frac >= 0.5) | paired
    closed = (consonant | silence) if include_silence else consonant
    n = len(closed)
    out = closed.copy()
    i = 0
    while i < n:
        if not closed[i]:
            i += 1
            continue
        j = i
        while j < n and closed[j]:
            j += 1
        need = cfg.min_closure_frames - (j - i)
        a, b = i, j
        while need > 0 and (a > 0 or b < n):
            left = feats.level_db[a - 1] if a > 0 else np.inf
            right = feats.level_db[b] if b < n else np.inf
            if left <= right:
                a -= 1
            else:
                b += 1
            need -= 1
        out[a:b] = True
        i = j
    return out.astype(np.float32)


def _band_shares(seg: np.ndarray, sr: int) -> tuple[float, float, float]:
    """Energy shares of a short segment: 80-400 Hz of 80-4000 Hz (murmur), below 1.5 kHz, above 3.5 kHz."""
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 1024)) ** 2
    f = np.fft.rfftfreq(1024, 1.0 / sr)

    def band(a: float, b: float) -> float:
        return float(spec[(f >= a) & (f < b)].sum())

    total = band(80, 8000) + 1e-12
    return band(80, 400) / (band(80, 4000) + 1e-12), band(80, 1500) / total, band(3500, 8000) / total


def _phrase_onsets(feats: ArticulatoryFeatures, cfg: ArticulationConfig) -> np.ndarray:
    """The 10 ms sub-frames where speech starts after at least `onset_pause_s` of silence."""
    quiet = feats.sub_level_db < cfg.silence_db
    pause = max(int(round(cfg.onset_pause_s / 0.010)), 1)
    starts = np.flatnonzero(~quiet[pause:]) + pause
    return np.array([s for s in starts if quiet[s - pause : s].all()], np.int64)


def labiodental_onsets(
    feats: ArticulatoryFeatures, hard: np.ndarray, cfg: ArticulationConfig = ArticulationConfig()
) -> np.ndarray:
    """(T,) 1 from `lead_frames` before a phrase-initial "f" or "v" through its frication, else 0.

    After a pause there is no dip for `labiodental_track` to find, so the sound itself decides. The quiet
    run (below `stop_level_db`) that starts the phrase must hold an audible frame (above `silence_db`) of
    flat noise over 1-8 kHz: flatter than `fricative_flatness` ("f"), or than `voiced_fricative_flatness`
    over a voice bar ("v"). "s" and "sh" are louder and peaked high, "th", "t" and "h" less flat, a "b"
    burst is one inaudible frame, "m" is no noise at all (espeak-ng words, tests/test_articulation.py). The
    lower lip goes to the upper teeth before the sound, as the lips close before a phrase-initial "p". A "v"'s
    voice bar also reads as a closure (`hard`): the closed frames right after the run are still the "v".
    """
    n = len(feats.level_db)
    out = np.zeros(n, np.float32)
    if feats.flatness is None:
        return out
    flat, level = feats.flatness, feats.level_db
    for s in _phrase_onsets(feats, cfg):
        k = int(feats.sub_frame_of[s])
        if k < n - 1 and flat[k] <= cfg.voiced_fricative_flatness:
            k += 1  # the onset frame may hold only the first 10 ms of the sound
        end = k
        while end < n and (
            (level[end] < cfg.stop_level_db and flat[end] > cfg.voiced_fricative_flatness)
            or (level[end] < cfg.stop_level_db + 4.0 and flat[end] > cfg.fricative_flatness)  # an "f" swelling
        ):
            end += 1
        run = slice(k, end)
        audible = level[run] > cfg.silence_db
        f = flat[run] > cfg.fricative_flatness
        v = feats.murmur[run] > cfg.murmur_share
        if (audible & (f | v)).any():
            while end < n and hard[end] > 0:
                end += 1
            out[max(k - cfg.lead_frames, 0) : end] = 1.0
    return out


def bilabial_onsets(
    audio: np.ndarray, sr: int, feats: ArticulatoryFeatures, cfg: ArticulationConfig = ArticulationConfig()
) -> np.ndarray:
    """(T,) 1 on the frames before a phrase-initial lip release ("p", "b", "m" after a pause), else 0.

    A closure after silence is silent too, so nothing in the level tells it from the pause: the first
    20 ms of the sound do. A voice bar or nasal murmur (energy below 400 Hz) or a weak, low-frequency
    burst that the vowel then overtakes is a lip release; "t", "k", "s", "f" put their energy higher
    and a vowel starts at full strength. Those frames keep the lips shut instead of anticipating.
    """
    n = len(feats.level_db)
    out = np.zeros(n, np.float32)
    db = feats.sub_level_db
    sub = int(sr * 0.010)
    for s in _phrase_onsets(feats, cfg):
        murmur, low, high = _band_shares(audio[s * sub : s * sub + 2 * sub], sr)
        rise = float(db[min(s + 3, len(db) - 1)] - db[s])
        burst = low >= cfg.burst_low_share and high <= cfg.burst_high_share and rise >= cfg.burst_rise_db
        if murmur >= cfg.murmur_share + 0.05 or burst:
            k = int(feats.sub_frame_of[s])  # the release frame may open; the frames before it may not
            out[max(k - cfg.lead_frames, 0) : k] = 1.0
    return out


def labiodental_track(
    feats: ArticulatoryFeatures, hard: np.ndarray, cfg: ArticulationConfig = ArticulationConfig()
) -> np.ndarray:
    """(T,) 1 where a closure-deep dip is frication ("f", "v", "th"): noise over 1-8 kHz with energy
    above 3 kHz, or with a voice bar under it. The lips do not shut there: the lower lip meets the
    upper teeth. Held at least `min_closure_frames` frames like a closure."""
    if feats.flatness is None or feats.high_share is None:
        return np.zeros(len(hard), np.float32)
    noisy = feats.flatness > cfg.fricative_flatness
    fric = (hard > 0) & noisy & ((feats.high_share > cfg.fricative_high_share) | (feats.murmur > cfg.murmur_share))
    # Widen a one-frame fricative over the closure frames around it.
    grown = fric.copy()
    for k in range(1, cfg.min_closure_frames):
        grown[k:] |= fric[:-k]
        grown[:-k] |= fric[k:]
    return (grown & (hard > 0)).astype(np.float32)


def _smooth(x: np.ndarray, attack: float = 0.7, release: float = 0.5) -> np.ndarray:
    """Zero-lag attack/release smoothing (forward and backward passes averaged)."""
    from .audio_features import attack_release

    if len(x) == 0:
        return x
    return 0.5 * (attack_release(x, attack, release) + attack_release(x[::-1], attack, release)[::-1])


def _lead(x: np.ndarray, frames: int) -> np.ndarray:
    """Anticipation: an opening that starts at frame k is already under way from frame k - `frames`."""
    y = x.copy()
    for k in range(1, frames + 1):
        ahead = np.concatenate([x[k:], np.repeat(x[-1:], len(x) - len(x[k:]))]) if len(x) else x
        y = np.maximum(y, ahead * (1.0 - k / (frames + 1)))
    return y


def _limit_rise(x: np.ndarray, step: float) -> np.ndarray:
    """No frame opens more than `step` beyond the previous one (falls are left to the closure approach)."""
    y = x.copy()
    for i in range(1, len(y)):
        y[i] = min(y[i], y[i - 1] + step)
    return y


def _limit_peaks(x: np.ndarray, height: float) -> np.ndarray:
    """No frame stands more than `height` above both neighbours (a one-frame flash of the jaw)."""
    y = x.copy()
    if len(y) > 2:
        cap = np.maximum(y[:-2], y[2:]) + height
        y[1:-1] = np.minimum(y[1:-1], cap)
    return y


def articulate(
    audio: np.ndarray,
    sr: int = SAMPLE_RATE,
    fps: float = FPS,
    expressiveness: float = 1.0,
    cfg: ArticulationConfig = ArticulationConfig(),
) -> Articulation:
    """Mouth opening, spread and closure per video frame from the speech itself.

    Steps: 1. acoustic features; 2. vowel targets from the formants (F1 -> jaw, F2 with F1 ->
    spread/rounding); 3. consonants open a little with their loudness; 4. smooth without lag, then
    lead the onsets by `cfg.lead_frames`; 5. closures forced shut (with a one-frame approach).
    """
    # Longer than 60 lines: the docstring's five steps in order on shared per-frame arrays (each step reads the
    # previous ones' values); split, each piece would take most of the others' state.
    feats = articulatory_features(audio, sr, fps)
    n = len(feats.level_db)
    audio = np.asarray(audio, np.float32)
    # 2. Vowels: F1 says how open the jaw is, F2 (front/back) with F1 (close/open) says spread or rounded.
    f1 = np.nan_to_num(feats.f1, nan=500.0)
    f2 = np.nan_to_num(feats.f2, nan=1500.0)
    loud = _ramp(feats.level_db, -30.0, -6.0) ** 0.7
    vowel_open = np.clip(0.25 + 0.75 * _ramp(f1, 250.0, 760.0), 0, 1) * loud  # "ee" still parts the lips
    close_vowel = _ramp(-f1, -600.0, -380.0)  # 1 for F1 <= 380 Hz
    front = _ramp(f2, 1500.0, 2100.0)
    back = _ramp(-f2, -1800.0, -1300.0)  # rounded up to F2 ~1.5 kHz (a fronted US "oo" sits there)
    vowel_spread = front - close_vowel * back
    # 3. Consonants (and anything not clearly a vowel): a little opening with loudness, neutral lips.
    v = feats.vowelness
    cons_open = cfg.consonant_open * loud
    raw_open = v * vowel_open + (1 - v) * cons_open
    raw_spread = v * vowel_spread
    # 4. Smooth (zero lag), then anticipate onsets.
    closure = closure_track(feats, cfg)  # reported: stops, nasals and silence
    hard = closure_track(feats, cfg, include_silence=False)  # never anticipated away
    hard = np.maximum(hard, bilabial_onsets(audio, sr, feats, cfg))  # nor a phrase-initial "p", "b", "m"
    raw_open = raw_open * (1 - closure)
    open_ = _lead(_smooth(raw_open), cfg.lead_frames)
    spread = _lead(np.abs(_smooth(raw_spread, 0.6, 0.4)), cfg.lead_frames) * np.sign(_smooth(raw_spread, 0.6, 0.4))
    # 5. Lips shut on consonant closures: zero on the closure frames, half-closed the frame before
    # (approach). Silence was zeroed before smoothing, so the lead can still open the mouth early.
    approach = np.concatenate([hard[1:], hard[-1:]]) if n else hard
    gate = np.maximum(hard, 0.5 * approach * (1 - hard))
    open_ = open_ * (1 - gate)
    # A single open frame between two closures (a 40 ms schwa in "n-a-p") only half opens: the jaw
    # cannot travel there and back in one frame, and a full flash would flicker.
    lone = (closure[:-2] > 0) & (closure[1:-1] == 0) & (closure[2:] > 0) if n > 2 else np.zeros(0, bool)
    open_[1:-1][lone] *= 0.5
    # Silence: shut, except the lead-in before speech and the settling after it.
    quiet = closure > 0
    k = cfg.lead_frames
    near_sound = np.convolve((~quiet).astype(np.float32), np.ones(2 * k + 1), mode="full")[k : k + n] > 0
    open_[quiet & ~near_sound] = 0.0
    # Lips part fast but the jaw takes a couple of frames to reach a wide vowel after a closure.
    open_ = _limit_peaks(_limit_rise(open_, cfg.max_rise_per_frame), cfg.max_peak)
    # "f" / "v": not shut but the lower lip on the upper teeth, a sliver open.
    labio = np.maximum(labiodental_track(feats, hard, cfg), labiodental_onsets(feats, hard, cfg))
    open_ = np.where(labio > 0, cfg.labiodental_open, open_)
    return Articulation(
        open=np.clip(open_ * expressiveness, 0, 1.2).astype(np.float32),
        spread=np.clip(spread, -1, 1).astype(np.float32),
        closure=closure.astype(np.float32),
        labiodental=labio.astype(np.float32),
    )
