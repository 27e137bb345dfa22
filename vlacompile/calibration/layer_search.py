"""Which language-stack layers go, chosen by the actions (`--layer-method actions`): a greedy search.

EfficientVLA's Eq. 1 scores each layer alone, by how little it turns the residual stream. Layers
that matter together then look unimportant one at a time: on pi0-tiny (p9) VLM layers 11-13 score
0.0015-0.0032 each (layer 9: 0.0056), dropping 11 or 12 alone keeps pushing at 75-80%, and
dropping all three takes it to 45% (docs/BENCHMARKS.md). This search measures what layer drop must
keep, the actions, and sees layers together.

Backward elimination: from the whole stack, drop the layer whose removal, with those already
dropped, moves the calibration samples' actions least; repeat. "Least" is the mean squared
difference of the normalized actions from the reference's (the family's `fidelity_outputs`, the
same noise per sample as calibration). A layer the pairing makes free (PassTarget.free_layers)
goes first, at no cost. The result is an order whose first d entries are the search's choice for
dropping d, so one search serves every --layers down to its depth; calibration stores it per
pairing and continues it when a build asks for more.

Cost: dropping d of n layers takes n + (n-1) + ... + (n-d+1) runs of the candidate model over the
search samples, each on a copy of the module tree that shares the weights (a family's keep_layers
rewrites the tree in place, never a weight). The samples are an even spread of SEARCH_SAMPLES of the
calibration set. A small model's candidates run in one process per core (workers.small_model_workers,
fork), each on one thread, and the reference's actions on one thread here too: the deviations are
then those of a one-process search at one thread, bit for bit, whatever the number of processes
(tests/models/pi0/test_layer_search.py), and ties stay ties.
"""

from __future__ import annotations

import contextlib

import torch

from ..passes.family import target_of
from ..passes.record import structure_copy
from ..workers import small_model_workers, with_state

SEARCH_SAMPLES = 16
CRITERION = "mean squared difference of normalized actions from the reference's, greedy backward elimination"


def search_samples(samples: list) -> tuple[list, list[int]]:
    """An even spread of at most SEARCH_SAMPLES samples, and their indices in `samples`."""
    count = min(SEARCH_SAMPLES, len(samples))
    picks = [round(i * (len(samples) - 1) / max(count - 1, 1)) for i in range(count)]
    return [samples[i] for i in picks], picks


@contextlib.contextmanager
def _one_thread(on: bool):
    threads = torch.get_num_threads()
    if on:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Judge:
    """The actions of a model with some layers dropped, against the reference's. `one_thread`: compute
    the reference as the worker processes compute the candidates."""

    def __init__(self, policy, samples, pairing: str, one_thread: bool = False):
        from ..models import export_declaration

        self.policy, self.pairing, self.family = policy, pairing, export_declaration(policy)
        self.samples = [s.loaded() for s in samples]
        self.noise = [policy.noise(i) for i in range(len(samples))]
        self.n = len(target_of(policy.model).layers())
        with _one_thread(one_thread):
            self.reference = self._actions(policy.model)

    @torch.no_grad()
    def _actions(self, model) -> torch.Tensor:
        outs = [self.family.fidelity_outputs(self.policy, model, s, z)[1] for s, z in zip(self.samples, self.noise)]
        return torch.stack(outs).double()

    def deviation(self, dropped: list[int]) -> float:
        model = structure_copy(self.policy.model)
        target_of(model).keep_layers([i for i in range(self.n) if i not in dropped], self.pairing)
        return (self._actions(model) - self.reference).pow(2).mean().item()


def extend(order: list[int], deviation: list[float], policy, samples, pairing: str, drop: int,
           progress: bool = True) -> tuple[list[int], list[float]]:
    """Continue a search (`order`, `deviation` so far; empty to start) until `drop` layers are dropped."""
    from tqdm import tqdm

    order, deviation = list(order), list(deviation)
    target = target_of(policy.model)
    for layer in target.free_layers(pairing):
        if layer not in order and len(order) < drop:
            order.append(layer)
            deviation.append(deviation[-1] if deviation else 0.0)
    if len(order) >= drop:
        return order, deviation
    n = len(target.layers())
    workers = small_model_workers(policy.model, n)
    judge = _Judge(policy, samples, pairing, one_thread=workers > 0)
    runs = sum(n - d for d in range(len(order), drop))
    with tqdm(total=runs, desc=f"layer search ({pairing})", unit="run", disable=not progress) as bar:
        while len(order) < drop:
            layers = [i for i in range(n) if i not in order]
            scores = {}
            for layer, score in zip(layers, _deviations(judge, [order + [i] for i in layers], workers)):
                scores[layer] = score
                bar.update()
            best = min(scores, key=lambda i: (scores[i], i))
            order.append(best)
            deviation.append(scores[best])
    return order, deviation


def _deviations(judge: _Judge, candidates: list[list[int]], workers: int):
    """judge.deviation of each candidate, in order: here, or in `workers` forked processes (one torch
    thread each, as the reference was computed)."""
    return with_state(_deviation, judge, candidates, workers)


def _deviation(judge: _Judge, dropped: list[int]) -> float:
    return judge.deviation(dropped)
