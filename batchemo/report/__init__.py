"""The outputs of a run: the report tables and their schema (read_report), atomic writing, summaries, and the
pictures (annotated media, timeline.png, report.html, face crops), built from the pipeline's face records.

The tables, atomic writing and summaries are imported here (pandas only); the picture modules (annotate, encode,
plots, html, crops) are imported where they are used, as they bring OpenCV, matplotlib and Jinja2."""
from __future__ import annotations

from .atomic import (ATOMIC_TEMP, read_record, remove_atomic_temps, write_atomic, write_csv,  # noqa: F401
                     write_json)
from .summaries import (SMOOTH_BINS, batch_summary, emotion_summary, people_table,  # noqa: F401
                        photo_people_table, row_seconds, seen_for, shown_rows, timeline_table, track_summary,
                        video_share_row)
from .tables import *  # noqa: F401,F403  (the schemas, columns and readers)
