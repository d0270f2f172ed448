"""python -m hallo4.media: see hallo4.media.cli."""

from .cli import main

raise SystemExit(main())
