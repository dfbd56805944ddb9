"""The rounds of adaptive runs (qhw.adaptive decides; this drives them), and quality repairs (qhw.repair) with them.

A round starts only when the round before is collected, in one
compare-and-set on the run's round with its jobs (Ledger.next_round), so any
number of collectors start it once. On a local simulator a submit drives every
round to the end (:func:`drive_rounds`); a provider's rounds are started by
``collect`` (:func:`advance_rounds`) as each is collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

import numpy as np

from qhw.adaptive import AdaptiveSettings, load_classifier, unsettled_by_change, unsettled_by_model
from qhw.backend import Backend, is_local, is_remote
from qhw.errors import ParameterError, QhwError
from qhw.jobstates import UNFINISHED_STATES, JobState
from qhw.planning import check_allowance, engine_profile, estimate_jobs, round_jobs, run_timing
from qhw.pricing import load_prices
from qhw.progress import Progress
from qhw.records import SPLIT_NAMES, JobRecord, ModelRecord, RunRecord, ceil_div
from qhw.repair import advance_repair
from qhw.store import ArtifactStore, RunCounts, Store
from qhw.worker import RunWorker, Tally, work_all

log = logging.getLogger("qhw.rounds")


def adaptive_settings(adaptive: bool, shots: int, model_id: int | None) -> AdaptiveSettings | None:
    """An adaptive run's settings (None for a uniform run), from ``--adaptive``, ``--shots`` and ``--model``.

    Raises:
        ConfigError: ``--model`` without ``--adaptive``, or ``--shots`` below the first round.
    """
    if not adaptive:
        if model_id is not None:
            raise ParameterError("model_id", f"decides an adaptive run's rounds: give {ParameterError.ref('adaptive')} too")
        return None
    return AdaptiveSettings.for_shots(shots, model_id)


def advance_round(store: Store, run: RunRecord, backend: Backend) -> list[JobRecord] | None:
    """Start the next round of an adaptive run whose round is collected.

    The samples of the round just collected that are still unsettled
    (qhw.adaptive) get the next round's shots, in new pending jobs; when none
    is, or the last round is done, the run's rounds end. Written in one
    compare-and-set on the run's round (Ledger.next_round): any number of
    collectors start a round once.

    Returns:
        The new round's jobs ([] when the rounds ended here); None when there
        is nothing to do yet (jobs still out, a round's failures not retried,
        or another process moved the run on first).
    """
    if run.adaptive is None or run.rounds_done:
        return None
    jobs = store.ledger.jobs(run.id)
    if any(job.state in UNFINISHED_STATES for job in jobs):
        return None
    rounds = run.adaptive
    k = run.circuits_per_sample
    order = store.ledger.run_circuit(run.id).sample_order
    planned = {int(e) for job in jobs if job.round == run.round and job.purpose == "samples" for e in job.execution_indices}
    stored = {
        int(position) * k + circuit
        for position, circuit in _positions(order, store.results.round_keys(run.id, run.round))
    }
    if planned - stored:
        # Failed jobs or executions of the round: `qhw retry` runs them, then the round goes on.
        return None
    samples = sorted({e // k for e in planned})
    keys = [(SPLIT_NAMES[int(code)], int(index)) for code, index in order[samples]]
    after = _restricted(store.results.run_counts(run.id, through_round=run.round), keys)
    if run.round + 1 >= rounds.rounds:
        unsettled = np.zeros(len(keys), dtype=bool)  # every sample has had --shots
    elif rounds.model_id is not None:
        classifier = _classifier(store, rounds.model_id, k * 2**run.num_qubits)
        unsettled = unsettled_by_model(classifier, after, rounds, seed=(run.seed or 0) + run.round)
    elif run.round == 0:
        unsettled = np.ones(len(keys), dtype=bool)  # nothing to compare with yet
    else:
        before = _restricted(store.results.run_counts(run.id, through_round=run.round - 1), keys)
        unsettled = unsettled_by_change(before, after, rounds)
    executions = [sample * k + circuit for sample, more in zip(samples, unsettled, strict=True) if more for circuit in range(k)]
    shots = rounds.round_shots(run.round + 1) if executions else 0
    plans = []
    if executions:
        profile = engine_profile(backend, backend.profile(), run.engine)
        # (slots --quality auto left out stay out)
        used = tuple(slot for slot in range(run.slots) if slot not in run.excluded_slots) if run.excluded_slots else None
        plans = round_jobs(backend, profile, executions, shots, run.slots, run.round + 1, used)
        if backend.is_paid and is_remote(backend):  # a round is a paid submission: it must fit what the plan has left
            sent = [(ceil_div(plan.executions, len(used or range(run.slots))), shots) for plan in plans]
            check_allowance(backend, estimate_jobs(backend, profile, sent, load_prices(), run_timing(backend, profile, run)))
    started = store.ledger.next_round(run, plans)
    if started is not None:
        log.info("run %s: round %d collected; %d of %d sample(s) unsettled", run.id, run.round, int(unsettled.sum()), len(keys))
    return started


def next_jobs(store: Store, run: RunRecord, backend: Backend) -> tuple[str, list[JobRecord] | None]:
    """What a run whose jobs have ended starts next: a quality repair
    (qhw.repair) first, so that a round is decided on repaired counts, then an
    adaptive run's next round; with what it is called."""
    repair = advance_repair(store, run, backend)
    if repair:
        return f"repair {run.repairs + 1}", repair
    run = store.ledger.run(run.id)
    return f"round {run.round + 1}", advance_round(store, run, backend)


def drive_rounds(store: Store, worker: RunWorker, tally: Tally, progress: Progress, *, pool, workers) -> Tally:
    """A run's later rounds and repairs, in this process, while each finishes
    here (a local simulator's); a provider's are left to ``collect``."""
    while True:
        run = store.ledger.run(worker.run.id)
        # Jobs --quality auto added in planning the rest again on fewer slots (a simulator's, run here).
        added = [job for job in store.ledger.jobs(run.id, states=[JobState.PENDING]) if job.id not in tally.waiting_on_errors]
        if added and is_local(worker.backend):
            claimed = [job for job in (store.ledger.claim(job, worker.holder) for job in added) if job is not None]
            if claimed:
                tally = work_all(store, worker, claimed, progress, f"{worker.backend.name}: jobs planned again", pool=pool, workers=workers)
                continue
        title, started = next_jobs(store, run, worker.backend)
        if not started:
            return tally
        claimed = [job for job in (store.ledger.claim(job, worker.holder) for job in started) if job is not None]
        tally = work_all(store, worker, claimed, progress, f"{worker.backend.name}: {title}", pool=pool, workers=workers)


def advance_rounds(
    store: Store, run_id: int | None, workers: dict[int, RunWorker], unworkable: dict[int, str], load: Callable[[int], None],
) -> int:
    """Start the next repair or round of every run (of one, or all) whose jobs
    have ended; returns how many were started."""
    started = 0
    for run in [store.ledger.run(run_id)] if run_id is not None else store.ledger.runs():
        rounds_left = run.adaptive is not None and not run.rounds_done
        repairs_left = run.quality == "auto" and not run.repairs_done
        if not (rounds_left or repairs_left) or run.id in unworkable:
            continue
        if run.id not in workers:
            load(run.id)  # into ``workers``, or its reason into ``unworkable``
            if run.id in unworkable:
                continue
        try:
            _, jobs = next_jobs(store, run, workers[run.id].backend)
        except QhwError as err:
            # Its model's file is gone, say: this run waits, named once; the others go on.
            if run_id is not None:
                raise
            unworkable[run.id] = str(err)
            log.warning(
                "run %s cannot start its next round here (%s); its collected rounds stay stored, the other runs go on",
                run.id, err,
            )
            continue
        started += bool(jobs)
    return started


@cache
def _loaded_classifier(artifacts: ArtifactStore, model: ModelRecord, input_dim: int):
    """A model's Keras classifier, loaded once a process (a round needs it again)."""
    return load_classifier(artifacts, model, input_dim)


def _classifier(store: Store, model_id: int, input_dim: int):
    return _loaded_classifier(store.artifacts, store.catalogue.model(model_id), input_dim)


def _positions(order: np.ndarray, keys) -> list[tuple[int, int]]:
    """(position in the run's sample order, circuit) of (split, sample index, circuit) keys."""
    position = {(SPLIT_NAMES[int(code)], int(index)): row for row, (code, index) in enumerate(order)}
    return [(position[(split, index)], circuit) for split, index, circuit in keys]


def _restricted(counts: RunCounts, keys: list[tuple[str, int]]) -> RunCounts:
    """These samples of a run's counts, in this order."""
    row = {(str(s), int(i)): r for r, (s, i) in enumerate(zip(counts.splits, counts.sample_index, strict=True))}
    return counts.subset(np.array([row[key] for key in keys], dtype=np.int64))
