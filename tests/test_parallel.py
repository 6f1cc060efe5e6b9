"""Data-parallel training (mnistbook.parallel): the derivation, the proof against one
process, the classic bugs, the launcher's failure handling and the torchrun command.

Processes are expensive to start (each imports torch), so one launch of two gloo processes
runs every experiment of the chapter, shortened, for all the tests that need it."""

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from mnistbook import gradcheck, seeding
from mnistbook.parallel import (
    bugs,
    cost,
    experiments,
    faults,
    processes,
    replicas,
    shards,
)
from mnistbook.parallel.__main__ import main
from mnistbook.training import RECIPE

PLAN = experiments.Plan(
    steps=300, log_every=100, bug_steps=100, cost_batch_sizes=(4,), cost_examples=20
)

#: float64 rounding, with room for a few hundred steps of it
ROUNDING = 1e-12


@pytest.fixture(scope="module")
def results():
    """One launch of two gloo processes running every experiment of the chapter."""
    seeding.seed_everything()
    return processes.launch(
        experiments.run_experiments, (PLAN,), world_size=2, timeout=300
    )


@pytest.fixture(scope="module")
def one(train_tensors):
    """The single-process runs, in this process."""
    run = (*train_tensors, PLAN.steps, PLAN.log_every)
    return {
        "torch64": replicas.single_process("torch", *run, dtype=torch.float64),
        "torch32": replicas.single_process("torch", *run, dtype=torch.float32),
        "scratch64": replicas.single_process("scratch", *run, dtype=torch.float64),
    }


def short_batch(train_tensors):
    x, y = experiments.short_batch(*train_tensors, PLAN.short_batch_size)
    return x.double(), y


# The derivation, in one process ------------------------------------------------------


def test_the_weighted_mean_of_shard_gradients_is_the_batch_gradient(train_tensors):
    net = replicas.fresh_net(torch.float64)
    x, y = short_batch(train_tensors)
    sizes = shards.even_sizes(len(y), 2)
    assert sizes == [3, 2]  # 60 000 = 4615 × 13 + 5
    g = shards.shard_gradients(net, x, y, sizes)
    whole = shards.gradient(net, x, y)
    assert gradcheck.relative_error(shards.weighted_mean(g, sizes), whole) < ROUNDING
    assert gradcheck.relative_error(shards.plain_mean(g), whole) > 1e-2  # biased
    # the same through autograd's own mean over a batch of 4 in equal shards
    x4, y4 = next(replicas.recipe_batches(*train_tensors, torch.float64))
    g4 = shards.shard_gradients(net, x4, y4, [2, 2])
    assert (
        gradcheck.relative_error(shards.plain_mean(g4), shards.gradient(net, x4, y4))
        < ROUNDING
    )


def test_the_loss_weight_makes_the_plain_mean_the_batch_gradient(train_tensors):
    net = replicas.fresh_net(torch.float64)
    x, y = short_batch(train_tensors)
    sizes = shards.even_sizes(len(y), 2)
    weighted = [
        shards.loss_weight(b, len(y), 2) * g
        for b, g in zip(sizes, shards.shard_gradients(net, x, y, sizes))
    ]
    assert (
        gradcheck.relative_error(
            shards.plain_mean(weighted), shards.gradient(net, x, y)
        )
        < ROUNDING
    )


def test_the_sampler_pads_with_the_first_examples_which_then_count_twice(train_tensors):
    n, k = 10, 4
    ranks = shards.sampler_shards(n, k)
    assert [len(r) for r in ranks] == [3] * 4
    counts = shards.counts(ranks, n)
    order = [
        index
        for position in range(3)
        for index in (ranks[rank][position] for rank in range(k))
    ]
    assert order[n:] == order[:2]  # padded by repeating the order's first indices
    assert counts.sum() == 12 and sorted(counts.tolist()) == [1] * 8 + [2] * 2
    net = replicas.fresh_net(torch.float64)
    x, y = train_tensors[0][:n].double(), train_tensors[1][:n]
    mean_of_shards = shards.plain_mean(
        [shards.gradient(net, x[i], y[i]) for i in ranks]
    )
    counted = shards.counted_gradient(net, x, y, counts)
    assert gradcheck.relative_error(mean_of_shards, counted) < ROUNDING
    assert gradcheck.relative_error(mean_of_shards, shards.gradient(net, x, y)) > 1e-2


def test_without_set_epoch_every_epoch_has_the_same_order():
    sampler = DistributedSampler(range(1000), num_replicas=2, rank=0)
    first, second = bugs.epoch_orders(sampler, 2, set_epoch=False)
    assert first == second
    first, second = bugs.epoch_orders(sampler, 2, set_epoch=True)
    assert first != second and len(first) == len(second) == 500


def test_split_names_what_it_expected():
    with pytest.raises(
        ValueError, match=r"add up to the batch's 4 examples, got \[3, 2\]"
    ):
        shards.split(torch.zeros(4, 784), torch.zeros(4), [3, 2])


def test_weights_are_flattened_alike_for_torch_and_scratch_networks():
    from mnistbook.lockstep import scratch_copy

    net = replicas.fresh_net(torch.float64)
    assert torch.equal(
        replicas.flat_weights(net), replicas.flat_weights(scratch_copy(net))
    )
    assert len(replicas.flat_weights(net)) == sum(p.numel() for p in net.parameters())


# Two processes against one -------------------------------------------------------------


def largest(a, b) -> float:
    """The largest weight difference over the steps both runs recorded."""
    differences = replicas.differences(a, b)
    assert differences, "the runs share no recorded step"
    return max(differences.values())


def test_ddp_equals_one_process_in_float64(results, one):
    assert results.backend == "gloo" and results.world_size == 2
    assert not multiprocessing.active_children()  # the launch left no worker behind
    assert len(results.ddp64) == PLAN.steps // PLAN.log_every
    assert largest(results.ddp64, one["torch64"]) < ROUNDING


def test_ddp_in_float32_drifts_only_by_rounding(results, one):
    assert 0 < largest(results.ddp32, one["torch32"]) < 1e-6


def test_the_all_reduced_scratch_network_equals_one_process_in_float64(results, one):
    assert len(results.scratch64) == PLAN.steps // PLAN.log_every
    assert largest(results.scratch64, one["scratch64"]) < ROUNDING


# The bugs, each with its symptom --------------------------------------------------------


def test_summing_is_a_learning_rate_times_the_world_size(results, one, train_tensors):
    against_correct = replicas.differences(results.summed, one["scratch64"])
    assert min(against_correct.values()) > 1e-3
    k_times = replicas.single_process(
        "scratch", *train_tensors, PLAN.bug_steps, PLAN.log_every, lr=2 * RECIPE.lr
    )
    assert largest(results.summed, k_times) < ROUNDING


def test_replicas_seeded_apart_stay_apart_and_drift_from_the_correct_run(results, one):
    spreads = [spread for _, spread in results.seeded_apart.values()]
    before, after = results.ddp_seeded_apart
    assert before > 1e-2
    assert all(abs(spread - before) < ROUNDING for spread in spreads)  # never closer
    drift = replicas.differences(
        {step: w for step, (w, _) in results.seeded_apart.items()}, one["scratch64"]
    )
    assert min(drift.values()) > 1e-4
    assert after == 0  # DDP copies rank 0's weights when it wraps the network


def test_a_sampler_without_set_epoch_repeats_its_order(results):
    first, second = results.sampler_orders["set_epoch=False"]
    assert first == second and len(first) == 30_000
    first, second = results.sampler_orders["set_epoch=True"]
    assert sum(a == b for a, b in zip(first, second)) < 100


def test_unequal_shards_averaged_plainly_are_biased(results, train_tensors):
    x, y = short_batch(train_tensors)
    whole = shards.gradient(replicas.fresh_net(torch.float64), x, y)
    assert gradcheck.relative_error(results.unequal["plain"], whole) > 1e-2
    assert gradcheck.relative_error(results.unequal["weighted"], whole) < ROUNDING


def test_the_cost_is_measured_per_process_count(results):
    (one_process, two) = results.costs
    assert (one_process.processes, two.processes) == (1, 2)
    assert one_process.step_seconds > 0 and two.step_seconds > two.allreduce_seconds > 0
    assert two.allreduces == 1  # the whole gradient fits one DDP bucket
    assert results.allreduce_alone > 0


def test_the_cost_table_puts_one_and_two_processes_side_by_side():
    rows = [cost.Cost(4, 1, 0.001), cost.Cost(4, 2, 0.004, 0.003, 1.0)]
    last = cost.table(rows).splitlines()[-1].split()
    assert last == ["4", "1.00", "ms", "4.00", "ms", "3.00", "ms", "75%", "0.25×"]


# The launcher ----------------------------------------------------------------------------


def assert_nothing_left(error: processes.LaunchError):
    assert not any(processes.running(pid) for pid in error.pids)
    assert not processes.listening(error.port)
    assert not multiprocessing.active_children()


def failed_launch(*fault, group_timeout: float = 30) -> processes.LaunchError:
    """The error of a launch of two workers whose rank 1 meets ``fault`` at step 3."""
    with pytest.raises(processes.LaunchError) as caught:
        processes.launch(
            faults.failing_loop,
            (1, 3, *fault),
            world_size=2,
            timeout=60,
            group_timeout=group_timeout,
        )
    return caught.value


def test_a_worker_raising_at_step_3_fails_the_launch_with_its_traceback():
    start = time.monotonic()
    error = failed_launch()
    assert time.monotonic() - start < 60
    first, *others = error.failures
    assert first.rank == 1 and "exited with code 1" in first.fate
    assert "Traceback" in first.report and "failing_loop" in first.report
    assert first.report.endswith("InjectedFault: rank 1 raises at step 3, on purpose")
    assert [other.rank for other in others] == [0]  # its all-reduce failed in turn
    assert "rank 1 failed first" in str(error) and first.report in str(error)
    assert_nothing_left(error)


def test_a_worker_that_dies_fails_the_launch():
    error = failed_launch("die")
    first = error.failures[0]
    assert first.rank == 1 and first.fate == f"killed by signal {signal.SIGKILL.name}"
    assert_nothing_left(error)


def test_a_worker_that_aborts_is_reported_with_its_stderr_and_stack(capfd):
    error = failed_launch("abort")
    first = error.failures[0]
    assert first.rank == 1 and first.fate == f"killed by signal {signal.SIGABRT.name}"
    assert first.report.startswith("rank 1: terminate called at step 3")
    assert "Fatal Python error: Aborted" in first.report
    assert "terminate called" not in capfd.readouterr().err  # not the launcher's
    assert_nothing_left(error)


def test_a_hanging_worker_is_stopped_with_its_stack():
    start = time.monotonic()
    error = failed_launch("hang", group_timeout=8)
    assert time.monotonic() - start < 60
    by_rank = {f.rank: f for f in error.failures}
    assert "Timed out" in by_rank[0].report  # rank 0's all-reduce gave up waiting
    assert by_rank[1].fate.startswith("still running; stopped")
    assert re.search(r"faults\.py\", line \d+ in failing_loop", by_rank[1].report)
    assert_nothing_left(error)


def test_the_launch_checks_its_arguments(monkeypatch):
    with pytest.raises(ValueError, match="world_size must be ≥ 1, got 0"):
        processes.launch(faults.failing_loop, world_size=0)
    with pytest.raises(ValueError, match="group_timeout ≤ timeout, got 20 and 10"):
        processes.launch(faults.failing_loop, timeout=10, group_timeout=20)
    notebook = types.ModuleType("__main__")  # a notebook's __main__: no file, no spec
    monkeypatch.setitem(sys.modules, "__main__", notebook)

    def in_a_cell(rank, world_size):
        return rank

    in_a_cell.__module__ = "__main__"
    with pytest.raises(ValueError, match="in_a_cell is defined in __main__"):
        processes.launch(in_a_cell)


def test_the_store_listens_on_the_loopback_address_only_while_it_is_open():
    with processes.loopback_store(2) as port:
        assert processes.listening(port)
    assert not processes.listening(port)


def test_the_command_checks_its_arguments(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["--steps", "0"])
    assert exit_status.value.code == 2
    assert (
        "--steps and --log-every must be ≥ 1, got 0 and 100" in capsys.readouterr().err
    )


def test_torchrun_runs_the_comparison(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    # the venv's torchrun script, or the module it runs
    launcher = (
        [str(torchrun)]
        if torchrun.exists()
        else [sys.executable, "-m", "torch.distributed.run"]
    )
    arguments = ["--nproc-per-node", "2", "-m", "mnistbook.parallel", "--steps", "100"]
    command = [*launcher, *arguments]  # the README's command
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as run:
        try:
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, err
    found = re.search(
        r"DDP on 2 processes against one process, 100 steps, float64: "
        r"largest weight difference (\S+)",
        out,
    )
    assert found, out
    assert float(found.group(1)) < ROUNDING
