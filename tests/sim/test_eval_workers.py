"""`eval --workers`: fp32 graphs' episodes run in worker processes are the episodes one process runs,
step for step, frames included; the reference's are this process's at one thread; fp16 graphs,
whose outcomes move with the thread count, stay here."""

from vlacompile.sim.evaluate import EvalConfig, evaluate
from vlacompile.sim.policies import open_graphs


def _frames(result) -> list:
    return [[(step, image.tobytes()) for step, image in frames] for _, frames in result["filmstrips"]]


def test_worker_processes_run_the_fp32_graphs_episodes_step_for_step(graphs):
    cfg = EvalConfig(episodes=4, start=7, filmstrips=2)
    policy = open_graphs(graphs, "fp32", "onnxruntime")
    here = evaluate(policy, cfg, progress=False)
    pooled = evaluate(policy, cfg, progress=False, workers=2)
    policy.pipeline.close()
    assert pooled["episodes"] == here["episodes"] and sum(e["calls"] for e in here["episodes"]) > 4
    assert _frames(pooled) == _frames(here) and len(_frames(here)) == 2


def test_of_the_graphs_only_fp32_on_onnx_runtime_go_to_workers(graphs):
    fp32, fp16 = open_graphs(graphs, "fp32", "onnxruntime"), open_graphs(graphs, "fp16", "onnxruntime")
    assert fp32.rebuild is not None and fp16.rebuild is None  # fp16's outputs follow the thread count
    fp32.pipeline.close()
    fp16.pipeline.close()


def test_workers_are_as_many_as_half_the_available_memory_holds(monkeypatch):
    from vlacompile.sim import eval_workers

    pages = {"SC_AVPHYS_PAGES": 10 * 2**20, "SC_PAGE_SIZE": 2**10}  # 10 GiB available
    monkeypatch.setattr(eval_workers.os, "sysconf", pages.__getitem__)
    assert eval_workers.affordable(8, 2**30) == 2  # 5 GiB at 2 GiB per worker
    assert eval_workers.affordable(8, 9 * 2**20) == 8  # tiny graphs: every core asked for
    assert eval_workers.affordable(8, 30 * 2**30) == 1  # a 7 B model's graphs: this process


def test_the_reference_in_worker_processes_runs_this_process_episodes_at_one_thread(tiny):
    """Each worker computes the inherited model on one thread: its episodes are this process's at one
    thread, step for step. (At two threads PyTorch's numbers move by about 1e-7: on 100 episodes the
    same successes and lengths, measured in docs/BENCHMARKS.md, not promised here.)"""
    import torch

    from vlacompile.sim.policies import TorchPolicy

    cfg = EvalConfig(episodes=4, start=7, filmstrips=1)
    policy, threads = TorchPolicy(tiny), torch.get_num_threads()
    pooled = evaluate(policy, cfg, progress=False, workers=2)
    torch.set_num_threads(1)
    try:
        here = evaluate(policy, cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert pooled["episodes"] == here["episodes"] and sum(e["calls"] for e in here["episodes"]) > 4
    assert _frames(pooled) == _frames(here) and len(_frames(here)) == 1
