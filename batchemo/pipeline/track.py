"""Face tracks across video frames: each person keeps one id while their boxes keep overlapping.

Rule (docs/how-it-works.md, "Tracking"): boxes of a full-frame detection are matched greedily to the live tracks,
best IoU first (IoU >= `iou_threshold`, or, for a track seen on the step before, centres closer than one box side
when a fast move breaks the overlap); after a gap a box continues a track only with its colours (`looks`, where the
caller gives them). A matched track takes the new box; an unmatched box starts a new track, reported at once when
the caller trusts it (a strong face score or an eye), otherwise once found again (`confirm_hits`). Between full-
frame detections the caller re-finds or follows each track on its own (`seen`). A track neither found nor followed
stays alive for `max_gap` analysed frames: re-found within that gap it keeps its id, and for the first `coast`
missed frames its last box is carried (held), so one flicker does not drop the face; a track seen on one frame only
is never held. Ids count up from 0 in order of being reported.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .looks import Look, same_look


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Areas shared by boxes a [N,4] and b [M,4] given as (x, y, w, h): an [N, M] matrix."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ax0, ay0, ax1, ay1 = a[:, 0, None], a[:, 1, None], (a[:, 0] + a[:, 2])[:, None], (a[:, 1] + a[:, 3])[:, None]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    return iw * ih


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a [N,4] and b [M,4] given as (x, y, w, h)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = intersection(a, b)
    union = a[:, 2, None] * a[:, 3, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class Track:
    id: int
    box: np.ndarray
    last_step: int  # last step the face was seen (found by a cascade, or followed)
    score: float = 1.0  # face score of the last cascade hit
    how: str = "detected"  # how the box of `last_step` was found
    last_hit: int = -1  # last step a cascade found it
    template: object = None  # its look at the last hit, for following (a `follow.LazyTemplate`)
    hits: int = 1  # steps a cascade found it on: one hit may be a misfire, two make it a face worth following
    confirmed: bool = True  # reported; a track born of a weak box is not, until `confirm_hits` hits
    look: Look | None = None  # its colours at the last hit (module `looks`): what a continuation must match

    def __post_init__(self):
        if self.last_hit < 0:
            self.last_hit = self.last_step

    def seen(self, box, step: int, how: str, score: float | None = None) -> None:
        self.box = np.asarray(box, np.int32)
        self.last_step = step
        self.how = how
        if score is not None:  # a cascade hit (following keeps the last hit's score)
            self.score = score
            self.hits += step != self.last_hit
            self.last_hit = step

    def confirm(self, hits: int) -> None:
        self.confirmed = self.confirmed or self.hits >= hits


@dataclass
class Tracker:
    iou_threshold: float = 0.3
    max_gap: int = 5
    coast: int = 1
    confirm_hits: int = 2  # cascade hits that make a weakly-born track a reported face
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def update(self, boxes: np.ndarray, step: int, scores: np.ndarray | None = None,
               trusted: np.ndarray | None = None, look: Callable[[np.ndarray], Look | None] | None = None) -> None:
        """Match one detection step's boxes (`live_tracks` / `live` then say which faces to report). A box
        that matches no track starts one; where `trusted` is False for it, that track is reported only once
        the cascades have found it `confirm_hits` times (a known face may be confirmed by a weaker hit than it
        takes to believe in a new one). With `look` (a box's look, `looks.FrameLooks`: asked only where needed),
        a track missed on the step before continues only with a box that looks like it: after a gap another
        person may stand where it was."""
        self.expire(step)
        boxes = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
        trusted = np.ones(len(boxes), bool) if trusted is None else np.asarray(trusted, bool)
        assigned = np.full(len(boxes), -1)
        if self.tracks and len(boxes):
            prev = np.stack([t.box for t in self.tracks])
            score = iou(prev, boxes)
            pc = prev[:, :2] + prev[:, 2:] / 2
            bc = boxes[:, :2] + boxes[:, 2:] / 2
            dist = np.linalg.norm(pc[:, None] - bc[None], axis=2)
            # Centres within one box side stand for a fast move between consecutive steps only: after a gap, a face
            # that close may be someone else who stepped in (the pedestrian clip: an old man's track went on
            # with the man with glasses who came to his place 0.7 s later).
            recent = np.array([step - t.last_step <= 1 for t in self.tracks])[:, None]
            near = (dist < np.maximum(prev[:, 2:3], boxes[None, :, 2])) & recent
            # Near-but-not-overlapping pairs rank below every overlapping pair.
            score = np.where(score >= self.iou_threshold, score, np.where(near, 1e-3 / (1 + dist), -1.0))
            used_t: set[int] = set()
            for flat in np.argsort(-score, axis=None):
                ti, bi = np.unravel_index(flat, score.shape)
                if score[ti, bi] < 0:
                    break
                if ti in used_t or assigned[bi] >= 0:
                    continue
                t = self.tracks[ti]
                if look is not None and step - t.last_step > 1 and not same_look(t.look, look(boxes[bi])):
                    continue
                used_t.add(ti)
                assigned[bi] = ti
                self.tracks[ti].seen(boxes[bi], step, "detected", float(scores[bi]))
        for bi in np.flatnonzero(assigned < 0):
            self.tracks.append(Track(-1, boxes[bi], step, float(scores[bi]), confirmed=bool(trusted[bi])))
        # Numbered now, not when the caller next asks: faces confirmed by this detection get their ids before
        # the ones its caller re-finds after it on the same step.
        self._number_confirmed()

    def _number_confirmed(self) -> None:
        """Confirm the tracks with enough hits; each newly confirmed one takes the next id (ids count up in
        order of being reported)."""
        for t in self.tracks:
            t.confirm(self.confirm_hits)
            if t.confirmed and t.id < 0:
                t.id = self.next_id
                self.next_id += 1

    def live_tracks(self, step: int) -> list[Track]:
        """The tracks to report at `step`, by id: seen now, or missed for at most `coast` steps (held; a face
        seen on one step only is never held: it may have been a misfire)."""
        self._number_confirmed()
        return sorted((t for t in self.tracks if t.confirmed and (t.last_step == step or (
            step - t.last_step <= self.coast and t.hits > 1))), key=lambda t: t.id)

    def live(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, boxes) of the tracks to report at `step`."""
        live = self.live_tracks(step)
        return (np.asarray([t.id for t in live], dtype=np.int64),
                np.stack([t.box for t in live]).astype(np.int32) if live else np.zeros((0, 4), np.int32))

    def expire(self, step: int) -> None:
        """End the tracks unseen for more than `max_gap` steps (a face coming back later gets a new id)."""
        self.tracks = [t for t in self.tracks if step - t.last_step <= self.max_gap]

    def unseen(self, step: int) -> list[Track]:
        """The tracks seen lately (within `coast` + 1 steps) but not at `step`: the ones worth looking for."""
        return [t for t in self.tracks if t.last_step != step and step - t.last_step <= self.coast + 1]

    def end_all(self) -> None:
        """At a scene cut: every track ends, so a face of the new shot at the spot where one of the old shot was
        (shot / reverse shot of two people framed alike) starts its own track instead of taking the other's id."""
        self.tracks = []

    def taken(self, box, step: int, by: Track) -> bool:
        """Is `box` the face of another track seen at `step` (IoU >= iou_threshold)? A track looking for its face
        near its last box must not take the face of someone next to it: two ids would follow one person."""
        others = [t.box for t in self.tracks if t is not by and t.last_step == step]
        return bool(others) and float(iou(np.asarray(box).reshape(1, 4), np.stack(others)).max()) >= self.iou_threshold
