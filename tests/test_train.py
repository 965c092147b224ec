"""The training loop on CPU: learning, determinism, exact resume, atomic checkpoints, NaN, several models."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cellrepro import CellreproError
from cellrepro.engine import checkpoint as ckpt
from cellrepro.engine.train import (NonFiniteLoss, TensorLoader, adam, default_precision, ema, ema_update, fit, make_fabric,
                                    release, resolve_accelerator, seed_everything)

REPO = Path(__file__).resolve().parents[1]


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[2.0], [-1.0], [0.5]]) + 1.0
    return TensorDataset(x, y)


def make(seed=0, dropout=0.2):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))
    return net, torch.optim.Adam(net.parameters(), lr=1e-2)


def mse_step(ctx, batch):
    x, y = batch
    loss = nn.functional.mse_loss(ctx.models["model"](x), y)
    ctx.optimize({"mse": loss})
    return {"mse": loss}


def loader(batch_size=8, workers=0, seed=0):
    return DataLoader(regression_data(seed=seed), batch_size=batch_size, shuffle=True, num_workers=workers)


def run(tmp=None, max_steps=12, resume=False, step_fn=mse_step, workers=0, **kw):
    net, opt = make()
    hist = fit(net, opt, step_fn, loader(workers=workers), max_steps=max_steps, seed=7, device="cpu",
               checkpoint_dir=tmp, checkpoint_every=3 if tmp else 0, resume=resume, progress=False, **kw)
    return net, hist


def test_loss_falls():
    net, opt = make(dropout=0.0)
    hist = fit(net, opt, mse_step, loader(), max_steps=150, device="cpu", seed=0, progress=False)
    assert list(hist.columns[:3]) == ["step", "epoch", "mse"] and "lr/model" in hist
    assert hist["mse"].iloc[-10:].mean() < 0.05 * hist["mse"].iloc[:5].mean()
    assert hist["epoch"].iloc[-1] == (150 - 1) // 8  # 8 batches per epoch


def test_two_seeded_runs_give_identical_histories():
    _, a = run()
    _, b = run()
    pd.testing.assert_frame_equal(a, b)
    torch.manual_seed(123)  # a different global state before the call changes nothing
    _, c = run()
    pd.testing.assert_frame_equal(a, c)


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, workers):
    full_net, full = run(tmp_path / "full", workers=workers)

    def crash_at_8(ctx, batch):
        if ctx.step == 7:
            raise KeyboardInterrupt("killed")
        return mse_step(ctx, batch)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", step_fn=crash_at_8, workers=workers)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "cut")] == ["step-0000003.ckpt", "step-0000006.ckpt"]
    calls = []
    net, resumed = run(tmp_path / "cut", resume=True, workers=workers,
                       step_fn=lambda ctx, batch: calls.append(ctx.step) or mse_step(ctx, batch))
    assert calls == [6, 7, 8, 9, 10, 11]  # only the steps after the newest checkpoint ran again
    pd.testing.assert_frame_equal(full, resumed)
    for p, q in zip(full_net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(p, q)


def test_kill_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path, monkeypatch):
    full_net, _ = run(tmp_path / "full")
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj, path):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint (step 6) dies half-way through writing
            with open(path, "wb") as fh:
                fh.write(b"PK\x03\x04 half a checkpoint")
            raise KeyboardInterrupt("killed while writing")
        real_save(obj, path)

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut")
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert [p.name for p in (tmp_path / "cut").iterdir()] == ["step-0000003.ckpt"]  # no partial file
    assert ckpt.load_latest(tmp_path / "cut")["step"] == 3
    calls = []
    net, _ = run(tmp_path / "cut", resume=True, step_fn=lambda ctx, batch: calls.append(ctx.step) or mse_step(ctx, batch))
    assert calls[0] == 3 and len(calls) == 9
    for p, q in zip(full_net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(p, q)


def test_nan_loss_names_step_and_term():
    def nan_at_3(ctx, batch):
        x, y = batch
        loss = nn.functional.mse_loss(ctx.models["model"](x), y)
        reg = torch.tensor(float("nan")) if ctx.step == 2 else torch.tensor(0.0)
        ctx.optimize({"mse": loss, "reg": reg})
        return {"mse": loss, "reg": reg}

    with pytest.raises(NonFiniteLoss, match=r"step 3: loss term 'reg' is nan"):
        run(step_fn=nan_at_3)

    def inf_logged(ctx, batch):
        out = mse_step(ctx, batch)
        return {**out, "grad_norm": float("inf")}

    with pytest.raises(NonFiniteLoss, match=r"step 1: loss term 'grad_norm' is inf"):
        run(step_fn=inf_logged)


def test_two_models_two_optimizers_and_an_ema_teacher(tmp_path):
    torch.manual_seed(0)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    teacher = ema(a, decay=0.5)
    start = {n: m.weight.detach().clone() for n, m in (("a", a), ("b", b), ("teacher", teacher.module))}

    def cps_step(ctx, batch):  # each network learns from the data and from the other, in turn
        x, y = batch
        pa, pb = ctx.models["a"](x), ctx.models["b"](x)
        la = nn.functional.mse_loss(pa, y) + 0.1 * nn.functional.mse_loss(pa, pb.detach())
        ctx.optimize({"sup_a": la}, "a")
        lb = nn.functional.mse_loss(ctx.models["b"](x), y) + 0.1 * nn.functional.mse_loss(ctx.models["b"](x), pa.detach())
        ctx.optimize({"sup_b": lb}, "b")
        ema_update(ctx.models["teacher"], ctx.models["a"])
        return {"a": la, "b": lb}

    models = {"a": a, "b": b, "teacher": teacher}
    opts = {"a": torch.optim.SGD(a.parameters(), lr=0.05), "b": torch.optim.SGD(b.parameters(), lr=0.05)}
    hist = fit(models, opts, cps_step, loader(), max_steps=40, device="cpu", seed=1, progress=False,
               checkpoint_dir=tmp_path, checkpoint_every=20)
    assert {"a", "b", "lr/a", "lr/b"} <= set(hist.columns)
    assert hist["a"].iloc[-5:].mean() < hist["a"].iloc[:5].mean() and hist["b"].iloc[-5:].mean() < hist["b"].iloc[:5].mean()
    for name, module in (("a", a), ("b", b), ("teacher", teacher.module)):
        assert not torch.equal(module.weight, start[name]), name
    saved = ckpt.load_latest(tmp_path)
    assert set(saved["models"]) == {"a", "b", "teacher"} and saved["step"] == 40
    assert torch.equal(saved["models"]["teacher"]["module.weight"], teacher.module.weight)


def test_accumulation_matches_a_larger_batch():
    def final(batch_size, accumulate, steps):
        torch.manual_seed(0)
        net = nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        data = DataLoader(regression_data(), batch_size=batch_size, shuffle=False)
        fit(net, opt, mse_step, data, max_steps=steps, accumulate=accumulate, device="cpu", progress=False)
        return net.weight.detach()

    assert torch.allclose(final(8, 1, 6), final(4, 2, 6), atol=1e-6)


def test_gradient_clipping_bounds_the_update():
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    fit(net, opt, mse_step, loader(), max_steps=1, clip_grad=0.01, device="cpu", progress=False)
    after = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert (after - before).norm() <= 0.01 + 1e-6


def test_evaluation_every_n_steps_and_at_the_end():
    net, opt = make()
    hist = fit(net, opt, mse_step, loader(), max_steps=7, eval_every=3, device="cpu", progress=False,
               eval_fn=lambda ctx: {"val_mse": 1.0 if not ctx.models["model"].training else -1.0})
    assert hist["val_mse"].notna().tolist() == [False, False, True, False, False, True, True]
    assert (hist["val_mse"].dropna() == 1.0).all()  # models are in eval mode during evaluation


def test_an_evaluation_that_draws_random_numbers_leaves_training_unchanged():
    """Dropout and the shuffling draw from torch's generator; so does this evaluation: training
    with it every 2 updates ends on the same weights as training without it."""
    weights = []
    for eval_fn in (None, lambda ctx: {"noise": float(torch.rand(1000).mean())}):
        net, opt = make()
        hist = fit(net, opt, mse_step, loader(), max_steps=7, eval_every=2 if eval_fn else 0, eval_fn=eval_fn,
                   seed=3, device="cpu", progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert hist["noise"].notna().sum() == 4
    assert torch.equal(weights[0], weights[1])


def test_misuse_is_reported():
    net, opt = make()
    with pytest.raises(CellreproError, match="without calling ctx.optimize"):
        fit(net, opt, lambda ctx, b: {"x": 0.0}, loader(), max_steps=1, device="cpu", progress=False)
    with pytest.raises(CellreproError, match="no optimizer named 'gen'"):
        fit(net, opt, lambda ctx, b: {"x": ctx.optimize(ctx.models["model"](b[0]).mean(), "gen")},
            loader(), max_steps=1, device="cpu", progress=False)
    with pytest.raises(CellreproError, match="need a checkpoint_dir"):
        fit(net, opt, mse_step, loader(), max_steps=1, resume=True, device="cpu", progress=False)
    with pytest.raises(CellreproError, match="unknown device 'tpu'"):
        resolve_accelerator("tpu")


def test_device_and_precision_defaults():
    assert resolve_accelerator("cpu") == ("cpu", 1)
    assert resolve_accelerator("cuda:1") == ("cuda", [1])
    assert default_precision("cpu") == "32-true"
    assert seed_everything(5) == 5


def tensor_loader(batch_size=8, **kw):
    return TensorLoader(*regression_data().tensors, batch_size=batch_size, **kw)


def test_tensor_loader_batches_cover_each_epoch_once_in_a_new_order():
    x, y = regression_data().tensors
    loader = TensorLoader(torch.arange(64), x, y, batch_size=10, shuffle=True)
    assert len(loader) == 7 and len(TensorLoader(x, batch_size=10, drop_last=True)) == 6
    torch.manual_seed(0)
    epochs = [torch.cat([i for i, _, _ in loader]) for _ in range(2)]
    for order in epochs:  # every sample exactly once
        assert torch.equal(order.sort().values, torch.arange(64))
    assert not torch.equal(epochs[0], epochs[1])
    torch.manual_seed(0)
    assert torch.equal(torch.cat([i for i, _, _ in loader]), epochs[0])  # order from the global CPU RNG
    i, xb, yb = next(iter(loader))
    assert torch.equal(xb, x[i]) and torch.equal(yb, y[i])  # rows stay paired


def test_tensor_loader_copies_shards_and_refuses_bad_input():
    loader = TensorLoader(torch.arange(64), batch_size=4, shuffle=False)
    assert [b[0].tolist() for b in loader][:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    halves = [loader.shard(r, 2) for r in (0, 1)]
    assert [len(h) for h in halves] == [8, 8] and next(iter(halves[1]))[0].tolist() == [1, 3, 5, 7]
    torch.manual_seed(0)
    shuffled = [TensorLoader(torch.arange(64), batch_size=4).shard(r, 2) for r in (0, 1)]
    seen = []
    for h in shuffled:
        torch.manual_seed(0)  # both processes draw the same order; each takes its share
        seen += [b[0] for b in h]
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(64))
    images = TensorLoader(torch.zeros(4, 2, 5, 5), batch_size=2, shuffle=False)
    moved = images.to("cpu", channels_last=True)
    assert moved is not images and not images.channels_last
    assert next(iter(moved))[0].is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(CellreproError, match="share their first dimension"):
        TensorLoader(torch.zeros(3), torch.zeros(4), batch_size=2)
    with pytest.raises(CellreproError, match="no full batch"):
        TensorLoader(torch.zeros(3), batch_size=4, drop_last=True)


def test_tensor_loader_trains_like_a_data_loader_and_leaves_the_callers_tensors_alone():
    net, opt = make(dropout=0.0)
    loader = tensor_loader()
    before = loader.tensors[0].clone()
    hist = fit(net, opt, mse_step, loader, max_steps=150, device="cpu", seed=0, progress=False)
    assert hist["mse"].iloc[-10:].mean() < 0.05 * hist["mse"].iloc[:5].mean()
    assert hist["epoch"].iloc[-1] == (150 - 1) // 8
    assert torch.equal(loader.tensors[0], before)


def test_interrupted_then_resumed_equals_uninterrupted_with_a_tensor_loader(tmp_path):
    def go(folder, step_fn=mse_step, resume=False):
        net, opt = make()
        hist = fit(net, opt, step_fn, tensor_loader(batch_size=10, drop_last=True), max_steps=12, seed=7,
                   device="cpu", checkpoint_dir=folder, checkpoint_every=5, resume=resume, progress=False,
                   log_every=4)
        return net, hist

    full_net, full = go(tmp_path / "full")

    def crash_at_9(ctx, batch):
        if ctx.step == 8:
            raise KeyboardInterrupt("killed")
        return mse_step(ctx, batch)

    with pytest.raises(KeyboardInterrupt):
        go(tmp_path / "cut", crash_at_9)
    net, resumed = go(tmp_path / "cut", resume=True)
    pd.testing.assert_frame_equal(full, resumed)  # crosses an epoch boundary (6 batches per epoch)
    for p, q in zip(full_net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(p, q)


def test_buffered_logging_gives_the_same_history_and_names_the_first_bad_step():
    _, every_step = run()
    _, every_5 = run(log_every=5)
    pd.testing.assert_frame_equal(every_step, every_5)

    def nan_from_3(ctx, batch):
        out = mse_step(ctx, batch)
        return {**out, "reg": torch.tensor(float("nan") if ctx.step >= 2 else 0.0)}

    with pytest.raises(NonFiniteLoss, match=r"step 3: loss term 'reg' is nan \(found at step 5"):
        run(step_fn=nan_from_3, log_every=5)


def test_one_fabric_per_setting_fused_adam_off_cpu_and_release():
    assert make_fabric("cpu") is make_fabric("cpu", "32-true")
    assert make_fabric("cpu", "bf16-mixed") is not make_fabric("cpu")
    assert adam(nn.Linear(2, 1).parameters(), lr=0.5).defaults["fused"] is None  # no CUDA here
    net, opt = make()
    fit(net, opt, mse_step, tensor_loader(), max_steps=2, device="cpu", progress=False)
    release(net, opt)
    assert all(p.device.type == "cpu" for p in net.parameters())
    with pytest.raises(CellreproError, match="takes modules and optimizers"):
        release("net")


def test_making_a_fabric_prints_no_precision_chatter(capfd, caplog, monkeypatch):
    from cellrepro.engine import hardware

    monkeypatch.setattr(hardware, "_FABRICS", {})  # a fresh Fabric, as in a new kernel
    make_fabric("cpu", "bf16-mixed")
    assert "Automatic Mixed Precision" not in capfd.readouterr().err + caplog.text


def test_cpu_settings_follow_the_committed_precision_benchmark():
    """Each chapter network's CPU precision is the one benchmarks/train_precision.py measured: bf16-mixed
    only where it ran >= 1.15x fp32 (none on the benchmark's CPU), with the ratio the table states."""
    import json

    from cellrepro.engine.hardware import CPU_SETTINGS, cpu_setting

    results = json.loads((REPO / "benchmarks" / "results" / "train_precision_cpu.json").read_text())
    assert set(CPU_SETTINGS) == set(results["networks"])
    for key, net in results["networks"].items():
        precision, channels_last = cpu_setting(key)
        assert precision == ("bf16-mixed" if net["ratios"]["bf16"] >= 1.15 else "32-true"), key
        best = max((v, k) for k, v in net["ratios"].items() if k in ("cl_fp32", "bf16", "cl_bf16"))[0]
        assert CPU_SETTINGS[key][2] == pytest.approx(best, abs=0.005), key
