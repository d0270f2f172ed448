"""Media I/O: load and validate portraits, audio and video; probe files; write browser-safe mp4.

One module per job, every public name re-exported here (`from hallo4 import media; media.X`):
- `ffmpeg`: the packaged ffmpeg binary (`ffmpeg_exe`, `check_ffmpeg`) and the shared file checks;
- `image`: `load_image` (portraits);  `info`: `probe` -> `MediaInfo` (parses `ffmpeg -i`);
- `audio`: `load_audio`;  `video`: `iter_frames`, `read_video` -> `VideoClip`;
- `mp4`: `write_mp4`;  `canvas`: the Hallo4 fit rule (`fit_to_canvas`, `Placement`, `output_size`);
- `cli`: `python -m hallo4.media probe FILE`.
Every failure a user can cause raises `InputError` naming the file, the problem and the fix.
"""

from .audio import SILENCE_PEAK, load_audio
from .canvas import Placement, fit_to_canvas, output_size
from .cli import main
from .ffmpeg import check_ffmpeg, ffmpeg_exe
from .image import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, load_image
from .info import MediaInfo, probe
from .mp4 import AAC_SAMPLE_RATES, write_mp4
from .video import MAX_VIDEO_BYTES, VideoClip, iter_frames, read_video

__all__ = [
    "AAC_SAMPLE_RATES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "MAX_VIDEO_BYTES",
    "MIN_IMAGE_SIDE",
    "SILENCE_PEAK",
    "MediaInfo",
    "Placement",
    "VideoClip",
    "check_ffmpeg",
    "ffmpeg_exe",
    "fit_to_canvas",
    "iter_frames",
    "load_audio",
    "load_image",
    "main",
    "output_size",
    "probe",
    "read_video",
    "write_mp4",
]
