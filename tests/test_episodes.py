"""Episodes, responses and `uncertain` (issue #40): the episode rule on frames tables built with known emotion
stretches (onsets, offsets, hysteresis, bridging, minimum duration, smoothing, exactly), responses to events, the
events file's errors, and the video job's tables checked against its own frames.csv rows (a real run)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo import report as R
from batchemo.cli import app
from batchemo.jobs.options import VideoOptions
from batchemo.knobs import OptionError
from batchemo.report import episodes as E
from batchemo.report.events import EventsError, read_events

from .conftest import SAMPLES, SHARED, need

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
FPS = 10.0
STEP = 1 / FPS
RAW = E.EpisodeRule(onset=0.5, offset=0.35, min_s=0.3, bridge_s=0.3, smooth_s=0.0)  # no smoothing: exact rows
QUIET = dict(annotate=False, html=False)
SAMPLE_VIDEO = SAMPLES / "video" / "two_faces.mp4"


def frames_of(happy: list[float], face: int = 0, start: int = 0, frames: list[int] | None = None,
              other: str = "neutral") -> pd.DataFrame:
    """A track's rows at FPS: p_happy as given, the rest on `other`, every other class 0."""
    idx = frames if frames is not None else list(range(start, start + len(happy)))
    rows = []
    for i, p in zip(idx, happy):
        probs = {f"p_{c}": 0.0 for c in CLASSES}
        probs["p_happy"], probs[f"p_{other}"] = p, 1 - p
        top = "happy" if p >= 0.5 else other
        rows.append({"source": "s.mp4", "frame": i, "time_s": round(i * STEP, 6), "face": face, "emotion": top,
                     "confidence": max(p, 1 - p), **probs})
    return pd.DataFrame(rows)


def seen_of(frames: pd.DataFrame) -> pd.Series:
    return pd.Series(STEP, index=frames.index)


def episodes(frames: pd.DataFrame, rule: E.EpisodeRule = RAW) -> pd.DataFrame:
    return E.episodes_table(frames, seen_of(frames), rule, "s.mp4")


# --- the rule, on known stretches ------------------------------------------------------------------------------

def test_hysteresis_keeps_an_episode_going_between_the_thresholds():
    # 1 s low, 1 s above the onset, 1 s between offset and onset, 1 s low: one episode of 2 s from 1.0 s
    f = frames_of([0.2] * 10 + [0.6] * 10 + [0.4] * 10 + [0.2] * 10)
    ep = episodes(f)
    assert len(ep) == 1
    e = ep.iloc[0]
    assert (e.emotion, e.face, e.frames) == ("happy", 0, 20)
    assert e.onset_s == pytest.approx(1.0) and e.offset_s == pytest.approx(3.0) and e.duration_s == pytest.approx(2.0)
    # without hysteresis (offset = onset) it ends where the values fall below 0.5
    flat = episodes(f, E.EpisodeRule(0.5, 0.5, 0.3, 0.3, 0.0))
    assert flat["offset_s"].tolist() == pytest.approx([2.0])


def test_values_between_the_thresholds_never_start_an_episode():
    assert episodes(frames_of([0.2] * 5 + [0.45] * 30 + [0.2] * 5)).empty


def test_short_gaps_are_bridged_and_longer_ones_not():
    dip = frames_of([0.6] * 10 + [0.1] * 2 + [0.6] * 10)  # a 0.2 s dip below the offset
    one = episodes(dip)
    assert len(one) == 1 and one.iloc[0].frames == 22 and one.iloc[0].duration_s == pytest.approx(2.2)
    two = episodes(dip, E.EpisodeRule(0.5, 0.35, 0.3, 0.2, 0.0))  # the dip is not shorter than 0.2 s
    assert two["onset_s"].tolist() == pytest.approx([0.0, 1.2])
    assert two["offset_s"].tolist() == pytest.approx([1.0, 2.2])


def test_a_hole_in_the_track_is_a_gap_like_a_dip():
    # rows 0-9 and 13-22: the face unseen for frames 10-12 (0.3 s from the end of frame 9 to frame 13)
    f = frames_of([0.6] * 20, frames=list(range(10)) + list(range(13, 23)))
    assert len(episodes(f)) == 2  # 0.3 s is not shorter than the 0.3 s bridge
    joined = episodes(f, E.EpisodeRule(0.5, 0.35, 0.3, 0.31, 0.0))
    assert len(joined) == 1 and joined.iloc[0].frames == 20
    assert joined.iloc[0].onset_s == pytest.approx(0.0) and joined.iloc[0].offset_s == pytest.approx(2.3)


def test_minimum_duration():
    f = frames_of([0.1] * 5 + [0.9] * 2 + [0.1] * 5 + [0.9] * 3 + [0.1] * 5)  # 0.2 s and 0.3 s above
    ep = episodes(f)
    assert ep["onset_s"].tolist() == pytest.approx([1.2]) and ep["duration_s"].tolist() == pytest.approx([0.3])
    both = episodes(f, E.EpisodeRule(0.5, 0.35, 0.2, 0.0, 0.0))
    assert both["onset_s"].tolist() == pytest.approx([0.5, 1.2])


def test_peak_and_mean_are_the_episodes_own_rows():
    vals = [0.1] * 3 + [0.6, 0.7, 0.95, 0.8, 0.6] + [0.1] * 3
    e = episodes(frames_of(vals)).iloc[0]
    assert e.peak_s == pytest.approx(0.5) and e.peak_p == pytest.approx(0.95)
    assert e.mean_p == pytest.approx(np.mean([0.6, 0.7, 0.95, 0.8, 0.6]))


def test_neutral_is_no_episode_unless_asked():
    f = frames_of([0.1] * 20)  # neutral at 0.9 throughout
    assert episodes(f).empty
    with_neutral = episodes(f, E.EpisodeRule(0.5, 0.35, 0.3, 0.3, 0.0, neutral=True))
    assert with_neutral["emotion"].tolist() == ["neutral"] and with_neutral.iloc[0].frames == 20


def test_tracks_are_apart_and_carry_their_person():
    a = frames_of([0.9] * 10, face=0)
    b = frames_of([0.1] * 5 + [0.9] * 10, face=1, other="sad")
    f = pd.concat([a, b], ignore_index=True).assign(person=pd.array([7] * 10 + [pd.NA] * 15, dtype="Int64"))
    ep = episodes(f)
    assert ep[["face", "emotion"]].values.tolist() == [[0, "happy"], [1, "sad"], [1, "happy"]]
    assert ep["person"].tolist()[0] == 7 and ep["person"].isna().tolist()[1:] == [True, True]
    assert ep.loc[ep.face == 1, "onset_s"].tolist() == pytest.approx([0.0, 0.5])


def test_smoothing_is_a_centred_mean_by_time_within_each_track():
    rng = np.random.default_rng(3)
    a = frames_of(list(rng.random(30)), face=0, frames=list(range(12)) + list(range(20, 38)))  # a hole at 1.2-2.0 s
    b = frames_of(list(rng.random(25)), face=1)
    f = pd.concat([a, b], ignore_index=True)
    got = E.smoothed(f, ["happy"], 0.5)["p_happy"]
    for i, r in f.iterrows():  # brute force: the track's rows within 0.25 s either side
        near = f[(f.face == r.face) & ((f.time_s - r.time_s).abs() <= 0.25 + 1e-9)]
        assert got[i] == pytest.approx(near["p_happy"].mean())


def test_smoothing_never_averages_across_a_hole_that_ends_an_episode():
    """A hole of --episode-bridge or longer cuts the track for smoothing as for the episodes; a shorter one is
    bridged, and smoothed across."""
    rng = np.random.default_rng(5)
    # frames 0-9, a 0.4 s hole (10-13 unseen), 14-23, a 0.1 s hole (24), 25-39: at 10 fps each row stands for 0.1 s
    idx = list(range(10)) + list(range(14, 24)) + list(range(25, 40))
    f = frames_of(list(rng.random(len(idx))), frames=idx)
    got = E.smoothed(f, ["happy"], 1.0, seen_of(f), 0.3)["p_happy"]
    part = np.where(f["frame"] < 14, 0, 1)  # the 0.4 s hole cuts; the 0.1 s one does not
    for i, r in f.iterrows():  # brute force: the rows of its stretch within 0.5 s either side
        near = f[(part == part[i]) & ((f.time_s - r.time_s).abs() <= 0.5 + 1e-9)]
        assert got[i] == pytest.approx(near["p_happy"].mean()), i
    # an episode after such a hole is smoothed from its own rows only: all 0.9, none of the 0.1 before the hole
    g = frames_of([0.1] * 10 + [0.9] * 10, frames=list(range(10)) + list(range(13, 23)))
    ep = episodes(g, E.EpisodeRule(0.5, 0.35, 0.3, 0.3, 1.0))
    assert len(ep) == 1 and ep.iloc[0].onset_s == pytest.approx(1.3)
    assert ep.iloc[0].mean_p == pytest.approx(0.9) and ep.iloc[0].frames == 10


def test_smoothing_decides_what_a_single_frame_spike_is():
    spike = frames_of([0.1] * 10 + [0.95] * 3 + [0.1] * 10)
    assert len(episodes(spike)) == 1  # 0.3 s above at full resolution
    assert episodes(spike, E.EpisodeRule(0.5, 0.35, 0.3, 0.3, 1.0)).empty  # averaged over 1 s it never reaches 0.5


# --- uncertain -------------------------------------------------------------------------------------------------

def test_uncertain_is_confidence_below_the_level_and_stays_last():
    f = frames_of([0.55, 0.9, 0.45, 0.2]).assign(person=pd.array([1, 1, 2, 2], dtype="Int64"))
    u = E.with_uncertain(f, 0.6)
    assert u["uncertain"].tolist() == [True, False, True, False] and u.columns[-1] == "uncertain"
    moved = E.uncertain_last(u.drop(columns="person").assign(person=u["person"]))
    assert list(moved.columns) == list(u.columns)
    assert len(E.counted(u, True)) == 2 and len(E.counted(u, False)) == 4


def test_person_numbers_go_only_into_batchemos_own_tables(tmp_path):
    """set_persons numbers episodes.csv / responses.csv where batchemo wrote them; a file of the user's by either
    name stays as it is."""
    from batchemo.jobs.derived import set_persons

    f = pd.concat([frames_of([0.9] * 10, face=0), frames_of([0.9] * 10, face=1)], ignore_index=True)
    R.write_csv(episodes(f), tmp_path / "episodes.csv")
    mine = "face,first_s,last_s,seconds_on_screen,dominant,note\n0,0,1,1,happy,my own notes\n"  # reads as a summary
    (tmp_path / "responses.csv").write_text(mine)
    set_persons(tmp_path, f.assign(person=pd.array([3] * 10 + [4] * 10, dtype="Int64")))
    assert R.read_report(tmp_path / "episodes.csv")["person"].tolist() == [3, 4]
    assert (tmp_path / "responses.csv").read_text() == mine


# --- responses -------------------------------------------------------------------------------------------------

def test_responses_take_the_first_episode_starting_in_the_window():
    f = pd.concat([frames_of([0.1] * 10 + [0.9] * 10 + [0.1] * 20, face=0),
                   frames_of([0.1] * 10, face=1, start=30)], ignore_index=True)
    ep = episodes(f)
    ev = pd.DataFrame({"time_s": [0.5, 2.5, 0.0], "label": ["a", "b", "c"]}, index=[4, 9, 11])
    r = E.responses_table(ev, f, ep, 1.0, "s.mp4")
    # event a: only track 0 on screen (track 1 starts at 3 s); its episode starts at 1.0 s, 0.5 s after
    a = r[r.event == 4]
    assert a["face"].tolist() == [0] and a.iloc[0].emotion == "happy" and a.iloc[0].latency_s == pytest.approx(0.5)
    assert a.iloc[0].peak_p == pytest.approx(0.9) and a.iloc[0].frames == 10
    window = f[(f.face == 0) & (f.time_s >= 0.5) & (f.time_s < 1.5 - 1e-9)]
    assert a.iloc[0].mean_p_happy == pytest.approx(window["p_happy"].mean())
    # event b: both tracks on screen in 2.5-3.5 s (track 1 from 3 s), and no episode starts there
    b = r[r.event == 9]
    assert b["face"].tolist() == [0, 1] and b["emotion"].isna().all() and b["latency_s"].isna().all()
    assert b["frames"].tolist() == [10, 5]
    # event c at 0 s: the window [0, 1) s ends just as the episode starts, so it is no response to c
    c = r[r.event == 11]
    assert c["face"].tolist() == [0] and c["emotion"].isna().all() and c.iloc[0].frames == 10


# --- events files ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, why", [
    (None, "not found"),
    ("time,label\n1,a\n", "no time_s column"),
    ("time_s,label\n1,a\nsoon,b\n", "row 3: time_s must be a number"),
    ("time_s,label\n-2,a\n", "row 2: time_s must be a number"),
    ("time_s,label\ninf,a\n", "row 2"),
])
def test_bad_events_files_say_which_and_why(tmp_path, text, why):
    path = tmp_path / "ev.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(EventsError, match=why) as e:
        read_events(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_events_file_reads_sources(tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text("time_s, label, source\n1.5, start, a.mp4\n3, all,\n")
    ev = read_events(path)
    assert ev["time_s"].tolist() == [1.5, 3.0] and ev["label"].tolist() == ["start", "all"]
    from batchemo.report.events import events_for
    assert events_for(ev, "day1/a.mp4").index.tolist() == [0, 1] and events_for(ev, "b.mp4").index.tolist() == [1]


def test_the_video_command_refuses_a_bad_events_file_in_one_line(tmp_path):
    bad = tmp_path / "stimuli.csv"
    bad.write_text("when,what\n1,a\n")
    r = CliRunner().invoke(app, ["video", str(SAMPLE_VIDEO), "--out", str(tmp_path / "o"), "--events", str(bad),
                                 "--no-progress"])
    assert r.exit_code == 2
    assert "stimuli.csv: no time_s or label column" in r.output and not (tmp_path / "o").exists()


# --- options ---------------------------------------------------------------------------------------------------

def test_episode_options_are_range_checked():
    with pytest.raises(OptionError, match="episode_offset must be at most episode_onset"):
        VideoOptions(episode_onset=0.5, episode_offset=0.6)
    for bad in (dict(episode_onset=0.0), dict(episode_onset=1.2), dict(episode_min_s=-1),
                dict(response_window_s=0), dict(min_confidence=1.5), dict(episode_smooth_s=float("nan"))):
        with pytest.raises(OptionError):
            VideoOptions(**bad)
    assert VideoOptions().episode_rule == E.EpisodeRule()  # the options' defaults are the rule's


# --- the video job ---------------------------------------------------------------------------------------------

def recompute(frames: pd.DataFrame, e: pd.Series, run: dict) -> None:
    """Check one episodes.csv row against frames.csv's rows of its track, computed here independently: the
    smoothed probability by brute force, the span's rows, its peak, mean, frames and ends, and the thresholds at
    its edges."""
    d = run["derived"]
    fps = run["video"]["fps_used"] / run["video"]["analyse_every"]
    track = frames[(frames.face == e.face) & ~frames.short_track.astype(bool)].sort_values("time_s")
    t, p = track["time_s"].to_numpy(), track[f"p_{e.emotion}"].to_numpy()
    half = d["episode_smooth_s"] / 2 + 1e-6
    s = np.array([p[np.abs(t - x) <= half].mean() for x in t])
    inside = (t >= e.onset_s - 1e-6) & (t < e.offset_s - 1e-6)
    assert inside.sum() == e.frames
    k = np.flatnonzero(inside)
    assert s[k].max() == pytest.approx(e.peak_p, abs=1e-5) and t[k[np.argmax(s[k])]] == pytest.approx(e.peak_s)
    assert s[k].mean() == pytest.approx(e.mean_p, abs=1e-5)
    assert s[k[0]] >= d["episode_onset"] - 1e-6  # starts at the onset threshold...
    assert k[0] == 0 or s[k[0] - 1] < d["episode_onset"]  # ...and not before
    end = min(t[k[-1]] + 1 / fps, run["video"]["duration_s"])
    assert e.offset_s == pytest.approx(end, abs=1e-5) and e.duration_s == pytest.approx(end - e.onset_s, abs=1e-5)
    assert k[-1] == len(t) - 1 or s[k[-1] + 1] < d["episode_offset"]  # ends where it falls below the offset
    assert e.duration_s >= d["episode_min_s"] - 1e-6


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, model):
    out = tmp_path_factory.mktemp("ep") / "two_faces"
    events = out.parent / "events.csv"
    events.write_text("time_s,label\n0.5,first\n2,second\n")
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(events=str(events)), progress=False)
    return out, events


def test_the_job_writes_episodes_that_agree_with_its_frames(sample_run):
    out, _ = sample_run
    frames, ep = R.read_report(out / "frames.csv"), R.read_report(out / "episodes.csv")
    run = json.loads((out / "run.json").read_text())
    assert list(ep.columns) == list(R.EPISODES.fixed) and str(ep["person"].dtype) == "Int64"
    assert frames.columns[-1] == "uncertain" and str(frames["uncertain"].dtype) == "boolean"
    assert frames["uncertain"].tolist() == (frames["confidence"] < 0.5).tolist()
    assert len(ep) == run["counts"]["episodes"] > 0
    for _, e in ep.iterrows():
        recompute(frames, e, run)


def test_the_job_writes_responses_and_marks_events_on_the_page(sample_run):
    out, _ = sample_run
    resp = R.read_report(out / "responses.csv")
    frames = R.read_report(out / "frames.csv")
    assert set(resp["event"]) == {0, 1} and set(resp["label"]) == {"first", "second"}
    for _, r in resp.iterrows():  # each track on screen in the 3 s after the event, and its mean there
        window = frames[(frames.face == r.face) & (frames.time_s >= r.event_s) & (frames.time_s < r.event_s + 3)]
        assert r.frames == len(window) and r.mean_p_happy == pytest.approx(window["p_happy"].mean(), abs=1e-5)
    page = (out / "report.html").read_text()
    assert page.count('class="event"') == 2 * 2  # two events on each of the two tracks' timelines
    ep = R.read_report(out / "episodes.csv")
    assert page.count('class="episode"') == len(ep)
    first = ep.iloc[0]
    assert f'{first.emotion} {first.onset_s:.1f} s' in page


def test_timeline_png_marks_the_events(tmp_path, model, monkeypatch):
    """A dashed line at each event across every track's panel of timeline.png, its label on the first panel; and
    none without --events."""
    import batchemo.report.plots as plots

    figures = []
    make = plots.timeline_figure
    monkeypatch.setattr(plots, "timeline_figure", lambda *a, **k: (figures.append(make(*a, **k)), figures[-1])[1])
    events = tmp_path / "ev.csv"
    events.write_text("time_s,label,source\n0.5,first,\n2,second,two_faces.mp4\n1,elsewhere,other.mp4\n")
    batchemo.analyze_video(SAMPLE_VIDEO, tmp_path / "v", model, VideoOptions(**QUIET, events=str(events)),
                           progress=False)
    panels = figures[-1].axes
    assert len(panels) == 2  # the sample's two tracks
    for ax in panels:
        assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [0.5, 2.0]
    assert [t.get_text() for t in panels[0].texts] == ["first", "second"] and not panels[1].texts
    batchemo.analyze_video(SAMPLE_VIDEO, tmp_path / "w", model, VideoOptions(**QUIET), progress=False)
    assert all(not ax.get_lines() and not ax.texts for ax in figures[-1].axes)


@pytest.mark.parametrize("clip", ["liveportrait-d3.mp4", "facerecognition-short_hamilton_clip.mp4"])
def test_episodes_of_a_real_clip_agree_with_its_frames(tmp_path, model, clip):
    path = SHARED / "media" / "realclips" / clip
    need(path.exists(), f"needs {path} (../shared data)")
    out = tmp_path / "r"
    batchemo.analyze_video(path, out, model, VideoOptions(**QUIET), progress=False)
    frames, ep = R.read_report(out / "frames.csv"), R.read_report(out / "episodes.csv")
    run = json.loads((out / "run.json").read_text())
    assert len(ep) > 0
    for _, e in ep.iterrows():
        recompute(frames, e, run)


def test_a_rerun_with_other_episode_options_rewrites_the_tables_without_analysing(tmp_path, model):
    out = tmp_path / "v"
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET), progress=False)
    frames_before = (out / "frames.csv").read_text()
    events = tmp_path / "ev.csv"
    events.write_text("time_s,label\n1,x\n")
    res = batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET, episode_neutral=True,
                                                                        episode_onset=1e-9, episode_offset=0.0,
                                                                        events=str(events)), progress=False)
    assert res.status == "skipped"
    ep = R.read_report(out / "episodes.csv")
    # every class passes an onset of ~0 on every row: one episode per class per track, the whole track long
    assert len(ep) == len(CLASSES) * 2 and (out / "responses.csv").is_file()
    assert (out / "frames.csv").read_text() == frames_before
    run = json.loads((out / "run.json").read_text())
    assert run["derived"]["episode_neutral"] is True and run["counts"]["episodes"] == len(ep)
    assert run["counts"]["responses"] == len(R.read_report(out / "responses.csv"))
    # run.json's options say what the tables were made with, as `derived` does
    assert (run["options"]["episode_neutral"], run["options"]["episode_onset"]) == (True, 1e-9)
    assert run["options"]["events"] == str(events)
    # a table gone while the options stay: made again on the next run
    (out / "responses.csv").unlink()
    res = batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET, episode_neutral=True,
                                                                        episode_onset=1e-9, episode_offset=0.0,
                                                                        events=str(events)), progress=False)
    assert res.status == "skipped" and (out / "responses.csv").is_file()
    # and back: the defaults' tables again, responses.csv gone with the events, and its count
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET), progress=False)
    assert len(R.read_report(out / "episodes.csv")) == 2 and not (out / "responses.csv").exists()
    run = json.loads((out / "run.json").read_text())
    assert "responses" not in run["counts"] and run["counts"]["episodes"] == 2
    assert run["options"]["events"] is None and run["options"]["episode_neutral"] is False


def test_a_run_reads_its_events_file_once(tmp_path, model):
    """Every video of a batch gets the events the run read before any work: the file gone (or changed) half way
    through changes nothing of this run."""
    videos = tmp_path / "in"
    videos.mkdir()
    for name in ("one.mp4", "two.mp4"):
        shutil.copy(SAMPLE_VIDEO, videos / name)
    events = tmp_path / "ev.csv"
    events.write_text("time_s,label\n1,x\n")
    out = tmp_path / "out"
    results = batchemo.analyze_videos([videos], out, model, VideoOptions(**QUIET, events=str(events)),
                                      progress=False, on_result=lambda r: events.unlink(missing_ok=True))
    assert [r.status for r in results] == ["complete", "complete"], results
    runs = [json.loads((out / rel / "run.json").read_text()) for rel in ("one", "two")]
    assert runs[0]["derived"]["events_sha256"] is not None
    assert runs[0]["derived"]["events_sha256"] == runs[1]["derived"]["events_sha256"]
    for rel in ("one", "two"):
        assert R.read_report(out / rel / "responses.csv")["label"].unique().tolist() == ["x"]


def test_an_empty_timeline_says_why(tmp_path, model, monkeypatch):
    """timeline.png's note: every track short is said as such (not as uncertain rows); --drop-uncertain leaving
    every row out is said as that."""
    import batchemo.report.plots as plots

    notes = []
    draw = plots.timeline_png
    monkeypatch.setattr(plots, "timeline_png", lambda *a, **k: (notes.append(k["empty_note"]), draw(*a, **k))[1])
    out = tmp_path / "v"
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET, min_track_s=100), progress=False)
    assert R.read_report(out / "frames.csv")["short_track"].all()
    assert notes[-1].startswith("only tracks shorter than 100 s"), notes
    out = tmp_path / "w"
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET), progress=False)
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET, min_confidence=1.0, drop_uncertain=True),
                           progress=False)
    assert notes[-1] == "every row uncertain (--drop-uncertain)", notes


def test_drop_uncertain_leaves_rows_out_of_the_summary_and_says_how_many(tmp_path, model):
    out = tmp_path / "v"
    batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET), progress=False)
    full = R.read_report(out / "summary.csv")
    # Every row is below a level of 1: all are left out, on a re-run that does not analyse again.
    res = batchemo.analyze_video(SAMPLE_VIDEO, out, model, VideoOptions(**QUIET, min_confidence=1.0,
                                                                        drop_uncertain=True), progress=False)
    assert res.status == "skipped"
    frames, summary = R.read_report(out / "frames.csv"), R.read_report(out / "summary.csv")
    assert frames["uncertain"].all() and len(frames) == int(full.loc[full.scope == "track", "frames"].sum())
    assert summary["scope"].tolist() == ["all"] and int(summary["frames"].iloc[0]) == 0
    assert R.read_report(out / "episodes.csv").empty
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["uncertain_left_out"] == len(frames)


def test_a_batch_gathers_episodes_and_counts_them_on_its_index(tmp_path, model):
    videos = tmp_path / "in"
    (videos / "a").mkdir(parents=True)
    shutil.copy(SAMPLE_VIDEO, videos / "a" / "one.mp4")
    shutil.copy(SAMPLE_VIDEO, videos / "two.mp4")
    batchemo.analyze_videos([videos], tmp_path / "out", model, VideoOptions(annotate=False), progress=False)
    batch = R.read_report(tmp_path / "out" / "episodes.csv")
    own = [R.read_report(tmp_path / "out" / rel / "episodes.csv") for rel in ("a/one", "two")]
    pd.testing.assert_frame_equal(batch, pd.concat(own, ignore_index=True))
    assert set(batch["source"]) == {"a/one.mp4", "two.mp4"}
    index = (tmp_path / "out" / "index.html").read_text()
    assert f"Episodes ({len(batch)})" in index
    for (source, face), g in batch.groupby(["source", "face"]):  # each linked to its track's card
        page = Path(source).with_suffix("").as_posix() + "/report.html"
        assert f'<a href="{page}#track-{face}">{source} track {face}</a></td><td class="n">{len(g)}</td>' in index
        assert f'id="track-{face}"' in (tmp_path / "out" / page).read_text()


def test_read_report_types_the_new_tables(sample_run):
    out, _ = sample_run
    for name, schema in (("episodes.csv", R.EPISODES), ("responses.csv", R.RESPONSES)):
        found, df = R.read_table(out / name)
        assert found is schema
        for col, dt in schema.dtypes(df.columns).items():
            assert str(df[col].dtype) == dt, (name, col)


def splitting_level(out: Path) -> float:
    """A --min-confidence that splits a folder report's faces: midway across the widest gap between two of their
    confidences (the sample's are all above 0.9997 with today's model: a level of its own for any model)."""
    c = np.unique(R.read_report(out / "faces.csv")["confidence"].to_numpy(float))
    assert len(c) >= 2, "the sample's faces need two confidences to split"
    k = int(np.argmax(np.diff(c)))
    return float((c[k] + c[k + 1]) / 2)


def test_folder_job_flags_uncertain_faces(tmp_path, sample_tree, model):
    out = tmp_path / "rep"
    batchemo.analyze_folder(sample_tree, out, model, annotate=False, html=False, progress=False)
    level = splitting_level(out)  # a re-run works `uncertain` and the summary out again, analysing nothing
    batchemo.analyze_folder(sample_tree, out, model, annotate=False, html=False, min_confidence=level,
                            drop_uncertain=True, progress=False)
    faces = R.read_report(out / "faces.csv")
    summary = R.read_report(out / "summary.csv")
    assert faces.columns[-1] == "uncertain"
    assert faces["uncertain"].tolist() == (faces["confidence"] < level).tolist()
    kept = int((~faces["uncertain"]).sum())
    assert 0 < kept < len(faces)  # the level splits the sample's faces
    assert int(summary.loc[summary.scope == "all", "faces"].iloc[0]) == kept
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["uncertain_left_out"] == len(faces) - kept


def test_docs_state_the_defaults():
    text = (Path(__file__).resolve().parent.parent / "docs" / "episodes.md").read_text()
    o = VideoOptions()
    for flag, value in (("--episode-onset", o.episode_onset), ("--episode-offset", o.episode_offset),
                        ("--episode-min", o.episode_min_s), ("--episode-bridge", o.episode_bridge_s),
                        ("--episode-smooth", o.episode_smooth_s), ("--min-confidence", o.min_confidence),
                        ("--response-window", o.response_window_s)):
        assert f"`{flag}` | {value:g}" in text, flag


def test_people_number_the_episodes_and_uncertain_stays_last(tmp_path, model):
    from .conftest import need_people

    need_people()
    videos = tmp_path / "in"
    videos.mkdir()
    shutil.copy(SAMPLE_VIDEO, videos / "one.mp4")
    shutil.copy(SAMPLE_VIDEO, videos / "two.mp4")
    events = tmp_path / "ev.csv"
    events.write_text("time_s,label\n1,x\n")
    out = tmp_path / "out"
    batchemo.analyze_videos([videos], out, model, VideoOptions(annotate=False, people=True, events=str(events)),
                            progress=False)
    for rel in ("one", "two"):
        frames = R.read_report(out / rel / "frames.csv")
        assert list(frames.columns[-2:]) == ["person", "uncertain"]  # person where it always was, uncertain after
        person = frames.drop_duplicates("face").set_index("face")["person"]
        for name in ("episodes.csv", "responses.csv"):
            table = R.read_report(out / rel / name)
            assert len(table) and table["person"].tolist() == person.loc[table["face"]].tolist(), name
    batch = R.read_report(out / "episodes.csv")
    index = (out / "index.html").read_text()
    for p, g in batch.groupby("person"):  # each linked to the person's card on the index
        assert f'<a href="#person-{p}">person {p}</a></td><td class="n">{len(g)}</td>' in index
        assert f'id="person-{p}"' in index
    # a run without --people takes the numbers out of the episodes too
    batchemo.analyze_videos([videos], out, model, VideoOptions(annotate=False, events=str(events)), progress=False)
    assert R.read_report(out / "one" / "episodes.csv")["person"].isna().all()
    assert R.read_report(out / "episodes.csv")["person"].isna().all()


def test_the_folder_command_says_how_many_uncertain_faces_it_left_out(tmp_path, sample_tree, model):
    out = tmp_path / "rep"
    batchemo.analyze_folder(sample_tree, out, model, annotate=False, html=False, progress=False)
    level = splitting_level(out)
    r = CliRunner().invoke(app, ["folder", str(sample_tree), "--out", str(out), "--no-progress", "--no-html",
                                 "--no-annotate", "--min-confidence", repr(level), "--drop-uncertain"])
    assert r.exit_code == 0, r.output
    n = int(R.read_report(out / "faces.csv")["uncertain"].sum())
    assert n > 0 and f"{n} uncertain face{'s' if n != 1 else ''} (confidence < {level:g}) left out" in r.output
