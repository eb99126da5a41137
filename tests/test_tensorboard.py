"""TensorBoard's own readers load the event logs mnistgan writes.

The Python EventAccumulator (with its restart purging), TensorBoard's plugin
data path (which migrates the legacy summaries to the tensors the Scalars,
Images and Histograms tabs draw), and the `tensorboard` server itself with its
Rust data loader all read the same files.
"""
import contextlib
import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

SCALARS = {"d_loss", "d_acc", "g_loss", "g_acc", "lr_d", "lr_g", "steps_per_sec"}
SCOPES = ("discriminator", "generator", "adversarial", "optimizer")
EVERYTHING = {k: 0 for k in ("scalars", "images", "histograms", "compressedHistograms", "tensors", "audio")}

LINE = re.compile(
    r"step\s+(\d+)/\d+\s+d_loss ([\d.]+)\s+d_acc ([\d.]+)\s+g_loss ([\d.]+)\s+g_acc ([\d.]+)"
    r"\s+(?:([\d.]+) (s/step|steps/s)|-- steps/s)"
)


def printed(stdout: str) -> dict:
    """The progress lines' values by step: {step: {tag: value}}."""
    out = {}
    for m in LINE.finditer(stdout):
        step = int(m[1])
        assert step not in out, f"step {step} printed twice"
        out[step] = dict(d_loss=float(m[2]), d_acc=float(m[3]), g_loss=float(m[4]), g_acc=float(m[5]))
        if m[6]:
            out[step]["rate"] = (float(m[6]), m[7])
    return out


def accumulate(logdir: Path, purge: bool = True) -> EventAccumulator:
    ea = EventAccumulator(str(logdir), size_guidance=EVERYTHING, purge_orphaned_data=purge)
    ea.Reload()
    return ea


def steps(events) -> list:
    return [e.step for e in events]


def train(mnistgan, data_dir, out, *args):
    return mnistgan("train", "--out", out, "--data", data_dir, "--subset", 256, "--batch", 8, "--log-every", 1, *args)


@pytest.fixture(scope="module")
def six_steps(mnistgan, data_dir, tmp_path_factory):
    """A 6-step run logging scalars every step, grids and histograms every 3."""
    out = tmp_path_factory.mktemp("tb") / "six"
    proc = train(mnistgan, data_dir, out, "--steps", 6, "--sample-every", 3,
                 "--histogram-every", 3, "--checkpoint-every", 3)
    return out, proc.stdout


def test_scalars_are_the_printed_values_at_every_step(six_steps):
    out, stdout = six_steps
    assert f"TensorBoard log: {out / 'logs'}" in stdout
    ea = accumulate(out / "logs")
    assert set(ea.Tags()["scalars"]) == SCALARS

    lines = printed(stdout)
    assert sorted(lines) == [1, 2, 3, 4, 5, 6]
    for tag in ("d_loss", "d_acc", "g_loss", "g_acc"):
        events = ea.Scalars(tag)
        assert steps(events) == [1, 2, 3, 4, 5, 6], tag
        for e in events:
            # Printed with 4 (losses) or 3 (accuracies) decimals; logged as float32.
            half = 0.5e-4 if tag.endswith("loss") else 0.5e-3
            assert abs(e.value - lines[e.step][tag]) <= half + 1e-6, (tag, e.step, e.value, lines[e.step][tag])

    # Keras' time-based decay, lr / (1 + decay * updates so far), in float32.
    for tag, lr, decay in (("lr_d", 2e-4, 6e-8), ("lr_g", 1e-4, 3e-8)):
        events = ea.Scalars(tag)
        assert steps(events) == [1, 2, 3, 4, 5, 6]
        for e in events:
            want = np.float32(lr) / (np.float32(1) + np.float32(decay) * np.float32(e.step - 1))
            assert np.isclose(e.value, want, rtol=1e-6, atol=0), (tag, e.step, e.value, want)

    # The speed the progress line shows, to its printed precision.
    for e in ea.Scalars("steps_per_sec"):
        assert e.value > 0
        shown, unit = lines[e.step]["rate"]
        if unit == "s/step":
            assert abs(1 / e.value - shown) <= 0.05 + 1e-3, (e.step, e.value, shown)
        else:
            assert abs(e.value - shown) <= 0.005 + 1e-4, (e.step, e.value, shown)


def test_images_are_the_sample_grids(six_steps):
    out, _ = six_steps
    ea = accumulate(out / "logs")
    assert set(ea.Tags()["images"]) == {"samples", "real"}
    assert steps(ea.Images("real")) == [0]
    assert steps(ea.Images("samples")) == [3, 6]
    for e in ea.Images("samples") + ea.Images("real"):
        name = "real.png" if e.step == 0 else f"step-{e.step:08d}.png"
        on_disk = (out / "samples" / name).read_bytes()
        assert e.encoded_image_string == on_disk
        pixels = tf.io.decode_png(e.encoded_image_string).numpy()
        assert pixels.shape == (e.height, e.width, 1)
        assert (e.width, e.height) == (244, 244)  # 4 x 4 digits of 28 + 2-pixel gutters, doubled
        assert pixels.std() > 0


def test_histograms_are_the_checkpointed_weights(six_steps):
    out, _ = six_steps
    ea = accumulate(out / "logs")
    reader = tf.train.load_checkpoint(str(out / "checkpoints" / "ckpt-00000006" / "variables"))
    trainable = {n for n in reader.get_variable_to_shape_map()
                 if n.startswith(("generator/", "discriminator/")) and "moving_" not in n}
    tags = set(ea.Tags()["histograms"])
    assert tags == trainable
    assert len(tags) == 28
    for tag in tags:
        events = ea.Histograms(tag)
        assert steps(events) == [0, 3, 6], tag  # initial weights, every 3 steps, the end
        # At step 6, TensorFlow's histogram of exactly the weights checkpointed at step 6.
        final = events[-1].histogram_value
        weights = reader.get_tensor(tag)
        assert final.num == weights.size, tag
        assert final.min == weights.min() and final.max == weights.max(), tag
        assert np.isclose(final.sum, weights.astype(np.float64).sum(), rtol=1e-4, atol=1e-4), tag
        assert sum(final.bucket) == weights.size, tag


def test_graph_shows_the_seeds_name_scopes(six_steps):
    out, _ = six_steps
    ea = accumulate(out / "logs")
    graph = ea.Graph()
    names = [n.name for n in graph.node]
    for scope in SCOPES:
        assert any(n.startswith(scope + "/") for n in names), f"no ops under {scope}/"
    for layer in ("discriminator/conv4/", "generator/deconv4/", "optimizer/discriminator/", "optimizer/adversarial/"):
        assert any(n.startswith(layer) for n in names), layer
    ops = {n.op for n in graph.node}
    assert {"Conv2D", "Conv2DBackpropInput", "FusedBatchNormV3", "ResourceApplyRMSProp", "HistogramSummary"} <= ops
    # It is the graph TensorFlow ran: Python TensorFlow imports it whole.
    with tf.Graph().as_default():
        tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(graph.SerializeToString()), name="")


def test_tensorboards_plugins_find_every_tag(six_steps):
    """TensorBoard's plugins read migrated tensors, not the legacy summaries."""
    out, _ = six_steps
    acc = plugin_event_accumulator.EventAccumulator(str(out / "logs"), size_guidance={"tensors": 0})
    acc.Reload()
    assert set(acc.PluginTagToContent("scalars")) == SCALARS
    assert set(acc.PluginTagToContent("images")) == {"samples", "real"}
    assert len(acc.PluginTagToContent("histograms")) == 28
    assert acc.Tags()["graph"]
    d_loss = EventAccumulator(str(out / "logs"), size_guidance=EVERYTHING)
    d_loss.Reload()
    assert [(t.step, tf.make_ndarray(t.tensor_proto).item()) for t in acc.Tensors("d_loss")] == \
        [(e.step, e.value) for e in d_loss.Scalars("d_loss")]


@contextlib.contextmanager
def tensorboard(logdir: Path, wait_for: str):
    """Runs the tensorboard command, with its Rust data loader, on logdir; yields a
    function getting /data/<path> once run "logs" has tag wait_for."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0",
         "--load_fast", "true"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()
    try:
        url, seen = None, []
        deadline = time.monotonic() + 45
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if m := re.search(r"(http://127\.0\.0\.1:\d+)/", line):
                url = m[1]
        assert url, "tensorboard did not start:\n" + "".join(seen)

        def get(path, **query):
            with urllib.request.urlopen(f"{url}/data/{path}?{urllib.parse.urlencode(query)}", timeout=20) as r:
                body = r.read()
                return json.loads(body) if r.headers.get_content_type() == "application/json" else body

        # The data server loads the files in the background.
        while time.monotonic() < deadline and wait_for not in get("plugin/scalars/tags").get("logs", {}) \
                and wait_for not in get("plugin/images/tags").get("logs", {}):
            time.sleep(0.5)
        yield get
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_tensorboard_serves_the_run(six_steps):
    """The tensorboard command serves every tab."""
    out, _ = six_steps
    run = "logs"  # named by its directory under --logdir
    with tensorboard(out, wait_for="samples") as get:
        assert get("runs") == [run]
        assert set(get("plugin/scalars/tags")[run]) == SCALARS
        d_loss = get("plugin/scalars/scalars", run=run, tag="d_loss")
        assert [step for _, step, _ in d_loss] == [1, 2, 3, 4, 5, 6]
        assert len(get("plugin/histograms/tags")[run]) == 28
        grids = get("plugin/images/images", run=run, tag="samples", sample=0)
        assert [g["step"] for g in grids] == [3, 6]
        png = get("plugin/images/individualImage", **dict(urllib.parse.parse_qsl(grids[-1]["query"])))
        assert png == (out / "samples" / "step-00000006.png").read_bytes()
        graph = get("plugin/graphs/graph", run=run, conceptual="false").decode()
        for scope in SCOPES:
            assert f'name: "{scope}/' in graph


def test_resume_appends_each_step_once(mnistgan, data_dir, tmp_path):
    out = tmp_path / "run"
    first = train(mnistgan, data_dir, out, "--steps", 4, "--checkpoint-every", 2, "--sample-every", 2)
    second = mnistgan("train", "--out", out, "--resume", "--steps", 6)
    logs = out / "logs"
    assert len(list(logs.glob("events.out.tfevents.*"))) == 2  # one file per session

    ea = accumulate(logs)
    lines = {**printed(first.stdout), **printed(second.stdout)}
    for tag in SCALARS:
        assert steps(ea.Scalars(tag)) == [1, 2, 3, 4, 5, 6], tag
    for e in ea.Scalars("g_loss"):
        assert abs(e.value - lines[e.step]["g_loss"]) <= 0.5e-4 + 1e-6
    assert steps(ea.Images("samples")) == [2, 4, 6]
    assert steps(ea.Images("real")) == [0]
    assert steps(ea.Histograms("generator/deconv4/kernel")) == [0, 4, 6]  # start, end of each session
    assert ea.Graph() is not None


def test_resume_after_a_crash_drops_the_orphaned_steps(mnistgan, data_dir, tmp_path):
    """A run that logged steps 3-4 after its last checkpoint (2), then resumed."""
    out = tmp_path / "run"
    train(mnistgan, data_dir, out, "--steps", 4, "--checkpoint-every", 2, "--sample-every", 2, "--histogram-every", 2)
    shutil.rmtree(out / "checkpoints" / "ckpt-00000004")  # as if killed before saving step 4
    resumed = mnistgan("train", "--out", out, "--resume", "--steps", 5)
    assert "from step 2" in resumed.stdout
    lines = printed(resumed.stdout)
    assert sorted(lines) == [3, 4, 5]

    ea = accumulate(out / "logs")
    for tag in SCALARS:
        assert steps(ea.Scalars(tag)) == [1, 2, 3, 4, 5], tag
    assert steps(ea.Images("samples")) == [2, 4, 5]
    assert steps(ea.Histograms("discriminator/conv1/kernel")) == [0, 2, 4, 5]
    # Steps 3 and 4 are the resumed session's, not the crashed one's.
    resumed_from = ea.Scalars("d_loss")[1].wall_time
    for e in ea.Scalars("d_loss")[2:]:
        assert abs(e.value - lines[e.step]["d_loss"]) <= 0.5e-4 + 1e-6
        assert e.wall_time > resumed_from
    grid4 = ea.Images("samples")[1]
    assert grid4.wall_time > resumed_from

    # It is the SessionLog START at step 3 that drops them: unpurged, they are there twice.
    raw = accumulate(out / "logs", purge=False)
    assert steps(raw.Scalars("d_loss")) == [1, 2, 3, 4, 3, 4, 5]
    assert steps(raw.Images("samples")) == [2, 4, 4, 5]

    # TensorBoard's Rust loader ignores SessionLog but drops a series' points when
    # it goes back to an earlier step, which the resumed session does, logging at
    # the same cadence: it serves the same single copy of each step.
    with tensorboard(out, wait_for="samples") as get:
        served = get("plugin/scalars/scalars", run="logs", tag="d_loss")
        assert [(step, wall) for wall, step, _ in served] == [(e.step, e.wall_time) for e in ea.Scalars("d_loss")]
        grids = get("plugin/images/images", run="logs", tag="samples", sample=0)
        assert [(g["step"], g["wall_time"]) for g in grids] == [(e.step, e.wall_time) for e in ea.Images("samples")]
        histograms = get("plugin/histograms/histograms", run="logs", tag="discriminator/conv1/kernel")
        assert [step for _, step, _ in histograms] == [0, 2, 4, 5]


def test_runs_sharing_a_logdir_stay_apart(mnistgan, data_dir, tmp_path):
    logdir = tmp_path / "tb"
    for name in ("first", "second"):
        train(mnistgan, data_dir, tmp_path / name, "--steps", 1, "--logdir", logdir)
    mux = EventMultiplexer(size_guidance=EVERYTHING).AddRunsFromDirectory(str(logdir))
    mux.Reload()
    assert sorted(mux.Runs()) == ["first", "second"]
    for name in ("first", "second"):
        assert not (tmp_path / name / "logs").exists()  # --logdir replaces <out>/logs
        assert steps(mux.Scalars(name, "d_loss")) == [1]
        assert mux.Graph(name) is not None

    # A third run with the same name may not mix its steps into "first".
    again = mnistgan("train", "--out", tmp_path / "elsewhere" / "first", "--data", data_dir, "--subset", 256,
                     "--batch", 8, "--steps", 1, "--logdir", logdir, check=False)
    assert again.returncode == 1
    assert "already holds another run's events" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
