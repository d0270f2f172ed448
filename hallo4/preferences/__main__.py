"""`python -m hallo4.preferences`: stats, export and import of a preference store."""

from . import main

raise SystemExit(main())
