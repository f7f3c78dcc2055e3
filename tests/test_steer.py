"""Steering: the shot manifest, `vidcolor shots`, keyframe propagation, references, hints,
cuts, the CLI paths and their errors. Tiny synthetic clips, tiny random models, CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidcolor import lab
from vidcolor.colorize import Colorizer
from vidcolor.errors import InputError, ModelError, OutputError, UsageError
from vidcolor.models import TINY_CONFIGS, build_model
from vidcolor.steer.engine import ShotSteer, SteerPlan, SteerStage
from vidcolor.steer.guides import (
    ReferencePlacer,
    frame_from_name,
    hint_guidance,
    load_hints,
    load_steer_image,
    steer_image_from_array,
)
from vidcolor.steer.manifest import (
    KeyframeEntry,
    Manifest,
    ShotEntry,
    format_manifest,
    read_manifest,
    write_manifest,
)
from vidcolor.steer.shots import make_shots, steered_frames
from vidcolor.temporal import TemporalOptions, run_stage_on_sequence
from vidcolor.temporal.flow import make_flow

W, H = 96, 64
CUT = 10
FRAMES = 20


def texture(seed: int, w: int, h: int) -> np.ndarray:
    """Smooth random colour texture (uint8 RGB, h x w x 3): trackable by optical flow."""
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    img = np.array(Image.fromarray((small * 255).astype(np.uint8)).resize(
        (w + 16, h + 16), Image.Resampling.BICUBIC))
    fine = rng.integers(-25, 25, (h + 16, w + 16, 1))
    return np.clip(img.astype(np.int32) + fine, 0, 255).astype(np.uint8)


def scene(n: int = FRAMES, cut: int | None = CUT) -> list[np.ndarray]:
    """Frames of a texture panning 1 px a frame, cut to another texture at ``cut``."""
    a, b = texture(1, W + n, H), texture(2, W + n, H)
    out = []
    for t in range(n):
        src = b if cut is not None and t >= cut else a
        out.append(np.ascontiguousarray(src[8 : 8 + H, t : t + W]))
    return out


def grey_L(frames: list[np.ndarray]) -> torch.Tensor:
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return lab.rgb_to_l(rgb)


def true_ab(frames: list[np.ndarray]) -> torch.Tensor:
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return lab.rgb_to_lab(rgb)[:, 1:]


def write_film(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """A grey film of the frames (Lab lightness as grey), lossless ffv1 in mkv or x264."""
    L = grey_L(frames)
    grey = (lab.l_to_grey(L)[:, 0].numpy() * 255 + 0.5).astype(np.uint8)
    with av.open(str(path), "w") as out:
        codec = "ffv1" if path.suffix == ".mkv" else "libx264"
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "qp": "0"}
        for i, g in enumerate(grey):
            f = av.VideoFrame.from_ndarray(np.repeat(g[..., None], 3, 2), format="rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


@pytest.fixture(scope="module")
def guided(tiny_guided: Path) -> Colorizer:
    return Colorizer.load(tiny_guided, device="cpu", working_short_side=64)


def stage_for(colorizer: Colorizer, plan: SteerPlan, **kw) -> SteerStage:
    return SteerStage(
        backend=make_flow("dis"), colorizer=colorizer, plan=plan, strength=0.95,
        cut_threshold=0.3, device=torch.device("cpu"), frame_hw=(H, W), **kw,
    )


def run(stage: SteerStage, L: torch.Tensor) -> torch.Tensor:
    return run_stage_on_sequence(stage, L, torch.zeros(L.shape[0], 2, *L.shape[-2:]))


# ---------------------------------------------------------------- manifest


def sample_manifest(folder: Path) -> Manifest:
    return Manifest(
        folder=folder, film="film.mkv", frames=20, frame_rate="25", size=(W, H), luma_hash="ab",
        shots=[
            ShotEntry(first=0, last=9, start=0.0, end=0.36, keyframe=4, grey="g.png",
                      keyframes=[KeyframeEntry(folder / "paint.png", 4)], saturation=1.2),
            ShotEntry(first=10, last=19, keyframe=14, reference=folder / "photo.jpg",
                      hints=[folder / "clicks.json"]),
        ],
    )


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = sample_manifest(tmp_path)
    write_manifest(m)
    back = read_manifest(tmp_path)
    assert [(s.first, s.last, s.keyframe) for s in back.shots] == [(0, 9, 4), (10, 19, 14)]
    assert back.shots[0].keyframes == [KeyframeEntry(tmp_path / "paint.png", 4)]
    assert back.shots[0].saturation == 1.2
    assert back.shots[1].reference == tmp_path / "photo.jpg"
    assert back.shots[1].hints == [tmp_path / "clicks.json"]
    assert back.shots[1].line > back.shots[0].line > 0
    assert format_manifest(back) == format_manifest(m)  # writing what was read changes nothing


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("first = 10", "first = 12"), r"shots.toml:\d+: frames 10-11 are in no shot"),
        (("first = 10", "first = 8"), r"shots.toml:\d+: shot starts at frame 8, inside"),
        (("last = 19", "last = 25"), r"last = 25 is past the film's last frame 19"),
        (("last = 19", "last = 17"), r"the shots end at frame 17 but the film has 20 frames"),
        (("saturation = 1.2", "saturation = 9"), r"saturation must be a number in \[0, 3\]"),
        (("saturation = 1.2", "colour = 1"), r"unknown key 'colour'"),
        (("png\", frame = 4", "png\", frame = 12"),
         r"names frame 12, outside the shot's frames 0-9"),
        (("frames = 20", "frames = 20\n[[oops"), r"not a valid TOML manifest"),
    ],
)
def test_manifest_errors_name_the_line_and_the_fix(tmp_path: Path, edit, message) -> None:
    write_manifest(sample_manifest(tmp_path))
    path = tmp_path / "shots.toml"
    path.write_text(path.read_text().replace(*edit, 1))
    with pytest.raises(InputError, match=message):
        read_manifest(tmp_path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no shot manifest; make one with `vidcolor shots"):
        read_manifest(tmp_path)


# ---------------------------------------------------------------- guides


def test_frame_number_in_names() -> None:
    assert frame_from_name("shot002_f000062_00m02.583s_auto.png") == 62
    assert frame_from_name("painted.png") is None


def test_keyframe_image_unpainted_pixels(tmp_path: Path) -> None:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 128  # exactly grey: unpainted
    rgba[:, : W // 2] = (200, 30, 30, 255)  # painted red
    rgba[: H // 4, W // 2 :, 3] = 0  # transparent: unpainted
    Image.fromarray(rgba).save(tmp_path / "k.png")
    im = load_steer_image(tmp_path / "k.png")
    assert float(im.painted[..., : W // 2].mean()) == 1.0
    assert float(im.painted[..., W // 2 :].mean()) == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"frame": 3, "points": [{"x": 200, "y": 5, "color": "#ff0000"}]},
         r"hint 1 at \(200, 5\) is off the 96x64 frame"),
        ({"frame": 3, "points": [{"x": 2, "y": 5, "color": "reddish"}]}, r"colour 'reddish'"),
        ({"frame": -1, "points": []}, r"\"frame\" must be a frame number"),
        ({"frame": 3, "points": [{"x": 2}]}, r"needs \"x\", \"y\""),
    ],
)
def test_hint_file_errors(tmp_path: Path, content, message) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message):
        load_hints(path, (W, H))


def test_hints_render_as_disks(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    pts = [{"x": 10, "y": 10, "color": [255, 0, 0], "radius": 3}, {"x": 80, "y": 50,
                                                                    "color": "blue"}]
    path.write_text(json.dumps({"frame": 2, "points": pts}))
    hints = load_hints(path, (W, H))
    assert hints.frame == 2
    ab, conf = hint_guidance([hints], (H, W), (H, W))
    assert conf[0, 0, 10, 10] == 1 and conf[0, 0, 30, 40] == 0
    assert float(ab[0, 0, 10, 10]) > 50  # red: a >> 0
    assert float(ab[0, 1, 50, 80]) < -50  # blue: b << 0
    assert 20 < float(conf.sum()) < 60  # two small disks


def test_reference_placer_tells_frames_from_photos() -> None:
    frames = scene(cut=None)
    L = grey_L(frames)
    big = np.array(Image.fromarray(frames[7]).resize((W * 2, H * 2), Image.Resampling.BICUBIC))
    mirrored = np.ascontiguousarray(frames[7][8:-8, 12:-12][:, ::-1])
    images = [steer_image_from_array(frames[3]), steer_image_from_array(big),
              steer_image_from_array(mirrored)]
    placer = ReferencePlacer(images, (H, W))
    for t in range(L.shape[0]):
        placer.update(t, L[t : t + 1])
    keys, photos = placer.result()
    assert [f for _, f in keys] == [3, 7]  # the scaled copy is frame 7 too
    assert photos == [images[2]]


# ---------------------------------------------------------------- propagation


def test_keyframe_colour_goes_forward_and_backward(guided: Colorizer) -> None:
    frames = scene(cut=None)
    L, truth = grey_L(frames), true_ab(frames)
    key = 8
    plan = SteerPlan(keyframes=[(steer_image_from_array(frames[key]), key)])
    stage = stage_for(guided, plan)
    ab = run(stage, L)
    auto = run(stage_for(guided, SteerPlan()), L)
    inner = (slice(None), slice(None), slice(4, -4), slice(12, -12))
    err = (ab - truth).abs()[inner].mean((1, 2, 3))
    err_auto = (auto - truth).abs()[inner].mean((1, 2, 3))
    assert stage.keyframes_used == [(key, "keyframe")]
    assert float(err[key]) < 0.5  # the keyframe itself is kept
    assert float(err.max()) < 4.0  # every frame, before and after it, near the truth
    assert float(err.mean()) < 0.25 * float(err_auto.mean())


def test_nothing_crosses_a_cut(guided: Colorizer) -> None:
    frames = scene()
    L = grey_L(frames)
    red = frames[3].copy()
    red[...] = (220, 20, 20)
    red = np.clip(red.astype(int) + (frames[3].astype(int) - 128) // 3, 0, 255).astype(np.uint8)
    plan = SteerPlan(shots=[ShotSteer(0, CUT - 1, keyframes=[(steer_image_from_array(red), 3)]),
                            ShotSteer(CUT, FRAMES - 1)])
    stage = stage_for(guided, plan)
    ab = run(stage, L)
    plain = run(stage_for(guided, SteerPlan(shots=[ShotSteer(0, CUT - 1),
                                                   ShotSteer(CUT, FRAMES - 1)])), L)
    assert [i for i, _ in stage.cuts] == [CUT]
    assert float(ab[:CUT, 0].mean()) > 30  # shot 1 is red
    assert torch.allclose(ab[CUT:], plain[CUT:], atol=1e-4)  # shot 2 as if nothing steered


def test_detected_cut_also_stops_a_film_wide_keyframe(guided: Colorizer) -> None:
    frames = scene()
    L = grey_L(frames)
    plan = SteerPlan(keyframes=[(steer_image_from_array(frames[2]), 2)])
    stage = stage_for(guided, plan)
    ab = run(stage, L)
    plain = run(stage_for(guided, SteerPlan()), L)
    assert [i for i, _ in stage.cuts] == [CUT]
    assert torch.allclose(ab[CUT:], plain[CUT:], atol=1e-4)


def test_long_shot_is_processed_in_segments(guided: Colorizer) -> None:
    frames = scene(n=24, cut=None)
    L = grey_L(frames)
    plan = SteerPlan(keyframes=[(steer_image_from_array(frames[1]), 1)])
    whole = run(stage_for(guided, plan), L)
    stage = stage_for(guided, plan)
    stage._max_buffer = 7  # force segments of 7 frames
    parts = run(stage, L)
    truth = true_ab(frames)
    seen = (slice(None), slice(None), slice(4, -4), slice(4, W - 26))  # shown by the keyframe
    assert float((parts - truth).abs()[seen].mean()) < 2.0  # the colour carries over segments
    assert float((parts - whole).abs()[:7].max()) < 1e-4  # same first segment


def test_hints_steer_their_shot(guided: Colorizer, tmp_path: Path) -> None:
    frames = scene(cut=None)
    L = grey_L(frames)
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps({"frame": 5, "points": [
        {"x": 48, "y": 32, "color": "#00ff00", "radius": 6}]}))
    plan = SteerPlan(hints=[load_hints(path, (W, H))])
    stage = stage_for(guided, plan)
    ab = run(stage, L)
    green = ab[:, 0, 30:34, 46:50].mean((1, 2))  # a < 0 is green
    assert stage.keyframes_used == [(5, "hints")]
    assert float(green[5]) < -40
    assert float(green[4]) < -30 and float(green[6]) < -30  # carried along the flow


def test_auto_keyframes_work_with_an_unguided_model(tiny_model: Path) -> None:
    colorizer = Colorizer.load(tiny_model, device="cpu", working_short_side=64)
    frames = scene()
    stage = stage_for(colorizer, SteerPlan(auto_keyframes=True))
    ab = run(stage, grey_L(frames))
    assert ab.shape == (FRAMES, 2, H, W)
    kinds = [k for _, k in stage.keyframes_used]
    assert kinds == ["auto", "auto"]  # one per shot
    assert stage.keyframes_used[1][0] >= CUT


def test_steering_needs_a_guided_model(tiny_model: Path) -> None:
    colorizer = Colorizer.load(tiny_model, device="cpu", working_short_side=64)
    plan = SteerPlan(keyframes=[(steer_image_from_array(scene()[0]), 0)])
    with pytest.raises(ModelError, match="needs a guided model"):
        stage_for(colorizer, plan)


def test_steered_frames_helper_matches_the_stage(guided: Colorizer) -> None:
    frames = scene(n=6, cut=None)
    L = grey_L(frames)
    plan = SteerPlan(keyframes=[(steer_image_from_array(frames[0]), 0)])
    a = steered_frames(L, stage_for(guided, plan), first_index=0)
    b = run(stage_for(guided, plan), L)
    assert torch.allclose(a, b, atol=1e-5)


# ---------------------------------------------------------------- films and the CLI


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_film(tmp_path_factory.mktemp("film") / "film.mkv", scene())


def test_shots_writes_keyframes_and_a_manifest(film: Path, tiny_model: Path, tmp_path: Path):
    from vidcolor.pipeline import ColorizeOptions
    from vidcolor.steer.shots import ShotsOptions

    opts = ShotsOptions(colorize=ColorizeOptions(model=str(tiny_model), quiet=True))
    out = tmp_path / "shots"
    result = make_shots(film, out, opts)
    m = read_manifest(out)
    assert [(s.first, s.last) for s in m.shots] == [(0, CUT - 1), (CUT, FRAMES - 1)]
    assert m.frames == FRAMES and m.size == (W, H)
    assert result.shots == 2 and len(result.written) == 4
    for s in m.shots:
        grey = Image.open(out / s.grey)
        assert grey.size == (W, H) and frame_from_name(s.grey) == s.keyframe
        assert (out / s.auto).is_file()
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        make_shots(film, out, opts)
    # the user paints the auto keyframe in place and lists it; a re-run keeps both
    painted = out / m.shots[0].auto
    Image.fromarray(np.full((H, W, 3), (200, 40, 40), np.uint8)).save(painted)
    m.shots[0].keyframes = [KeyframeEntry(painted)]
    write_manifest(m)
    again = make_shots(film, out, ShotsOptions(colorize=opts.colorize, overwrite=True))
    assert painted in again.kept
    assert np.array(Image.open(painted))[0, 0].tolist() == [200, 40, 40]
    assert read_manifest(out).shots[0].keyframes == [KeyframeEntry(painted)]
    assert (out / "shots.toml.bak").is_file()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcolor", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_render_with_shots_and_reference(
    film: Path, tiny_model: Path, tiny_guided: Path, tmp_path: Path
) -> None:
    shots = tmp_path / "shots"
    r = _cli("shots", str(film), "-o", str(shots), "--model", str(tiny_model), "-q")
    assert r.returncode == 0, r.stderr
    m = read_manifest(shots)
    frames = scene()
    key = m.shots[1].keyframe
    Image.fromarray(frames[key]).save(shots / f"painted_f{key:06d}.png")
    text = (shots / "shots.toml").read_text()
    last = text.rindex("keyframes = []")
    text = text[:last] + f'keyframes = ["painted_f{key:06d}.png"]' + text[last + 14:]
    (shots / "shots.toml").write_text(text)
    out = tmp_path / "out.mkv"
    r = _cli(str(film), "-o", str(out), "--shots", str(shots), "--steer-model",
             str(tiny_guided), "--codec", "ffv1", "--working-size", "64")
    assert r.returncode == 0, r.stderr
    assert "1 steered" in r.stderr
    with av.open(str(out)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == FRAMES
    truth = true_ab(frames)
    got = true_ab(decoded)
    inner = (slice(None), slice(None), slice(6, -6), slice(14, -14))
    err_steered = float((got[CUT:] - truth[CUT:]).abs()[inner].mean())
    plain = tmp_path / "plain.mkv"
    r = _cli(str(film), "-o", str(plain), "--model", str(tiny_guided), "--codec", "ffv1",
             "--working-size", "64", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(plain)) as c:
        auto = true_ab([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    err_auto = float((auto[CUT:] - truth[CUT:]).abs()[inner].mean())
    assert err_steered < 0.4 * err_auto
    # a --reference that is a frame of the film becomes that frame's keyframe
    ref = tmp_path / "frame2.png"
    Image.fromarray(frames[2]).save(ref)
    out2 = tmp_path / "out2.mkv"
    r = _cli(str(film), "-o", str(out2), "--reference", str(ref), "--steer-model",
             str(tiny_guided), "--codec", "ffv1", "--working-size", "64")
    assert r.returncode == 0, r.stderr
    assert "frame2.png is frame 2 of the film" in r.stderr


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        ("missing_reference", 3, "reference not found"),
        ("text_reference", 3, "reference is not a readable image"),
        ("cropped_keyframe", 3, "give the whole frame"),
        ("manifest_other_film", 3, "made for a film of 99 frames"),
        ("hints_without_frame", 3, "--hints needs the frame"),
        ("flow_none", 2, "drop --flow none"),
        ("start_with_shots", 2, "drop --start/--duration"),
    ],
)
def test_cli_steering_errors_are_one_line(
    film: Path, tiny_guided: Path, tiny_model: Path, tmp_path: Path, setup: str, code: int,
    message: str,
) -> None:
    out = tmp_path / "out.mkv"
    args = [str(film), "-o", str(out), "--steer-model", str(tiny_guided)]
    shots = tmp_path / "shots"
    if setup in ("cropped_keyframe", "manifest_other_film", "start_with_shots"):
        m = Manifest(folder=shots, film="film.mkv", frames=FRAMES,
                     shots=[ShotEntry(0, CUT - 1), ShotEntry(CUT, FRAMES - 1)])
        if setup == "cropped_keyframe":
            Image.fromarray(scene()[3][:, :40]).save(shots.parent / "crop.png")
            m.shots[0].keyframes = [KeyframeEntry(shots.parent / "crop.png", 3)]
        if setup == "manifest_other_film":
            m.frames = 99
            m.shots[-1].last = 98
        write_manifest(m)
        args += ["--shots", str(shots)]
        if setup == "start_with_shots":
            args += ["--start", "0.1"]
    elif setup == "missing_reference":
        args += ["--reference", str(tmp_path / "nope.png")]
    elif setup == "text_reference":
        (tmp_path / "ref.png").write_text("not an image")
        args += ["--reference", str(tmp_path / "ref.png")]
    elif setup == "hints_without_frame":
        (tmp_path / "h.json").write_text(json.dumps({"points": []}))
        args += ["--hints", str(tmp_path / "h.json")]
    elif setup == "flow_none":
        args += ["--reference", str(tmp_path / "r.png"), "--flow", "none"]
        Image.fromarray(scene()[0]).save(tmp_path / "r.png")
    r = _cli(*args)
    assert r.returncode == code, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_preview_with_shots(film: Path, tiny_model: Path, tiny_guided: Path, tmp_path: Path):
    from vidcolor.pipeline import ColorizeOptions
    from vidcolor.steer.shots import ShotsOptions, preview_shots

    opts = ColorizeOptions(model=str(tiny_model), steer_model=str(tiny_guided),
                           working_short_side=64, quiet=True)
    make_shots(film, tmp_path / "shots", ShotsOptions(colorize=opts))
    sheet = preview_shots(film, tmp_path / "sheet.png", tmp_path / "shots", opts)
    img = Image.open(sheet)
    assert img.width > 4 * 48 and img.height > 2 * 32  # 2 rows of 4 pictures


def test_guided_model_starts_as_the_automatic_one() -> None:
    from vidcolor.models.exemplar import guide_tensor

    torch.manual_seed(0)
    fusion = build_model("fusion", TINY_CONFIGS["fusion"]).eval()
    guided_net = build_model("exemplar", TINY_CONFIGS["exemplar"]).eval()
    missing = guided_net.load_state_dict(fusion.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("guide.", "inject.")) for k in missing)
    L = torch.rand(2, 1, 64, 64) * 100
    g = guide_tensor(torch.randn(2, 2, 64, 64) * 30, torch.rand(2, 1, 64, 64))
    with torch.no_grad():
        assert torch.allclose(fusion(L)["ab"], guided_net(L, g)["ab"], atol=1e-5)


def test_training_guidance_is_deterministic_and_well_formed() -> None:
    from vidcolor.train.guidance import sample_guidance

    torch.manual_seed(0)
    net = build_model("exemplar", TINY_CONFIGS["exemplar"])
    L = torch.rand(6, 1, 64, 64) * 100
    ab = torch.randn(6, 2, 64, 64) * 20
    a = sample_guidance(net, L, ab, torch.Generator().manual_seed(3))
    b = sample_guidance(net, L, ab, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (6, 3, 64, 64)
    conf = a[:, 2]
    assert float(conf.min()) >= 0 and float(conf.max()) <= 1
    assert float(a[:, :2].abs().max()) <= 1.0


def test_eval_video_reference_runs(tiny_model: Path, tiny_guided: Path) -> None:
    from vidcolor.steer.evaluate import VARIANTS, evaluate_steering

    frames = scene(n=12, cut=None)
    auto = Colorizer.load(tiny_model, device="cpu", working_short_side=64)
    g = Colorizer.load(tiny_guided, device="cpu", working_short_side=64)
    scores = evaluate_steering(frames, automatic=auto, guided=g,
                               temporal=TemporalOptions(flow="dis"), working_short_side=64,
                               variants=VARIANTS)
    by = {s.label: s for s in scores}
    assert set(by) == set(VARIANTS)
    assert by["keyframe first"].psnr > by["automatic"].psnr + 3
    assert by["keyframe first"].keyframes == [(0, "keyframe")]
    assert by["reference photo"].keyframes == []  # a mirrored crop is no frame
    with pytest.raises(UsageError):
        evaluate_steering(frames, automatic=auto, guided=g, temporal=TemporalOptions(flow="dis"),
                          working_short_side=64, variants=("keyframe 99",))


def test_a_new_object_gets_the_models_colour_not_the_keyframes() -> None:
    """A checkered box that the keyframe never showed enters a green field: the keyframe's
    green stays on the field, and the box takes the model's own colour (the shipped models)."""
    from vidcolor.models import DEFAULT_MODEL, STEER_MODEL

    n, w, h = 14, 192, 128
    field = texture(5, w + n, h).astype(np.float32)
    field = (field - field.mean((0, 1))) * 0.4 + np.array([70, 140, 50])  # a green field
    frames = []
    for t in range(n):
        f = field[8 : 8 + h, t : t + w].copy()
        if t >= 4:  # the box slides in from the right edge
            x0 = w - 10 * (t - 3)
            yy, xx = np.mgrid[0:48, 0 : w - x0]
            f[40:88, x0:] = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 235, 30)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    L = grey_L(frames)
    guided = Colorizer.load(STEER_MODEL, device="cpu", working_short_side=128)
    auto = Colorizer.load(DEFAULT_MODEL, device="cpu", working_short_side=128)
    stage = SteerStage(backend=make_flow("dis"), colorizer=guided, plan=SteerPlan(
        keyframes=[(steer_image_from_array(frames[0]), 0)]), strength=0.95, cut_threshold=0.3,
        device=torch.device("cpu"), frame_hw=(h, w), automatic=auto)
    ab = run(stage, L)
    green = true_ab(frames[:1])[0, :, :, :].mean((1, 2))
    box = ab[-1, :, 44:84, w - 90 : w - 6].mean((1, 2))
    field_out = ab[-1, :, 100:, : w // 2].mean((1, 2))
    assert float((field_out - green).abs().sum()) < 6  # the keyframe's colour holds
    assert float((box - green).abs().sum()) > 3 * float((field_out - green).abs().sum()) + 10


def test_cli_eval_video_reference(tiny_model: Path, tiny_guided: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, f in enumerate(scene(n=8, cut=None)):
        Image.fromarray(f).save(clip / f"{i:05d}.png")
    out = tmp_path / "scores.json"
    r = _cli("eval-video", str(clip), "--reference", "middle", "--model", str(tiny_model),
             "--steer-model", str(tiny_guided), "--working-size", "64", "--json", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert "keyframe middle" in r.stdout and "naive chained" in r.stdout
    rows = {row["label"]: row for row in json.loads(out.read_text())}
    assert rows["keyframe middle"]["keyframes"] == [[4, "keyframe"]]
    r = _cli("eval-video", str(clip), "--reference", "99", "--model", str(tiny_model), "-q")
    assert r.returncode == 2 and "the clip has 8 frames" in r.stderr


def test_the_manifest_decides_where_shots_are(guided: Colorizer) -> None:
    """A user who merges two shots in the manifest gets one shot: no reset at the detected cut,
    and a cut moved by hand is where the colour stops."""
    frames = scene()
    L = grey_L(frames)
    key = [(steer_image_from_array(frames[2]), 2)]
    merged = stage_for(guided, SteerPlan(shots=[ShotSteer(0, FRAMES - 1, keyframes=key)]))
    run(merged, L)
    assert merged.cuts == []
    moved = stage_for(guided, SteerPlan(shots=[ShotSteer(0, 5, keyframes=key),
                                               ShotSteer(6, FRAMES - 1)]))
    ab = run(moved, L)
    plain = run(stage_for(guided, SteerPlan(shots=[ShotSteer(0, 5), ShotSteer(6, FRAMES - 1)])), L)
    assert [i for i, _ in moved.cuts] == [6]
    assert torch.allclose(ab[6:], plain[6:], atol=1e-4)
    assert not torch.allclose(ab[:6], plain[:6], atol=1e-2)


def test_manifest_keyframe_without_a_frame_is_found_in_its_shot(film: Path, tmp_path: Path):
    from vidcolor.media.decode import probe_video
    from vidcolor.steer.plan import build_plan

    frames = scene()
    shots = tmp_path / "shots"
    m = Manifest(folder=shots, film="film.mkv", frames=FRAMES,
                 shots=[ShotEntry(0, CUT - 1), ShotEntry(CUT, FRAMES - 1)])
    shots.mkdir()
    Image.fromarray(frames[13]).save(shots / "painted.png")
    m.shots[1].keyframes = [KeyframeEntry(shots / "painted.png")]
    write_manifest(m)
    plan = build_plan(probe_video(film), shots=shots, working_short_side=64)
    assert [f for _, f in plan.shots[1].keyframes] == [13]
    # a picture that is no frame of the shot (a negative of one): one line, and the fix
    Image.fromarray(255 - frames[13]).save(shots / "painted.png")
    with pytest.raises(InputError, match=r"shots.toml:\d+: keyframe painted.png matches no frame"
                                         r" of the shot \(10-19\)"):
        build_plan(probe_video(film), shots=shots, working_short_side=64)
