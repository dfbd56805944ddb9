"""--quality auto: flagged copies and positions left out while a run goes, and what they ran measured again.

Every stored result carries its fidelity to its circuit's exact answer
(qhw.quality). With ``--quality auto``, after each job's counts are stored:

- a copy or a position the rule flags (qhw.quality.flagged, or the run's
  ``--quality-floor``) is left out of the run's jobs not yet sent: their
  executions ride on the remaining slots (a slot is a copy at a position),
  the left-out slots carry filler that is never read (:func:`exclude_flagged`);
- once every job of the run has ended, the circuits whose counts came from a
  left-out slot, or from a flagged job, are measured again in a repair on
  the good slots (:func:`advance_repair`): new pending jobs written in one
  compare-and-set on the run's repairs (Ledger.start_repair), as an adaptive
  run's rounds are, so any number of collectors start a repair once, and
  claims, kills, retries and ``cancel`` work on its jobs as on any other.

What it may spend is the run's reserve: ``--quality-reserve`` (a share, 10 %
by default) of the device time its own jobs take, counted in executions
times shots (QPU time on IBM, and what Braket bills by shot, both follow it).
Slots left out make the jobs not yet sent longer; a repair adds jobs. Both
are counted, and a step that would take the run beyond its reserve is not
taken: the run's quality log says so and its repairs end. A repaired result
supersedes the one it measured again; both are kept (the run's quality reads
every one, what it measured is read by train, compare and results from the
newest).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from qhw.backend import Backend, is_remote
from qhw.errors import ConflictError
from qhw.jobstates import UNFINISHED_STATES
from qhw.planning import check_allowance, engine_profile, estimate_jobs, logical_per_job, run_timing
from qhw.pricing import load_prices
from qhw.quality import RunQuality, flagged, run_quality
from qhw.records import SPLIT_NAMES, JobPlan, JobRecord, RunRecord, ceil_div
from qhw.store import Store

log = logging.getLogger("qhw.repair")

#: Repairs a run may start: a repair's jobs are checked as any others, and a
#: slot flagged in a repair is left out of the next; beyond this many, what
#: is still flagged is left as measured (and shown).
MAX_REPAIRS = 3


def measured_quality(store: Store, run: RunRecord) -> RunQuality:
    """The run's quality from every result it stored (superseded ones too: what the device did)."""
    return run_quality(*store.results.fidelities(run.id), floor=run.quality_floor)


def flagged_slots(run: RunRecord, quality: RunQuality) -> set[int]:
    """The slots (position * copies + copy) of the copies and positions the quality flags."""
    copies = {g.key for g in quality.copies if g.flagged}
    positions = {g.key for g in quality.positions if g.flagged}
    return {slot for slot in range(run.slots) if slot % run.copies in copies or slot // run.copies in positions}


def planned_work(run: RunRecord, jobs: Sequence[JobRecord]) -> int:
    """The run's own device work (executions sent times shots) on every slot,
    its executions packed whole (as its jobs are planned: each a whole number
    of packed executions, each round's apart): what the reserve is a share of."""
    executions: dict[int, int] = {}
    for job in _samples(jobs):
        if not job.repair:
            executions[job.shots(run.shots)] = executions.get(job.shots(run.shots), 0) + job.executions
    return sum(ceil_div(n, run.slots) * shots for shots, n in executions.items())


def extra_work(run: RunRecord, jobs: Sequence[JobRecord]) -> int:
    """What --quality auto has added to it: the device work its jobs take
    (left-out slots make them longer) and its repairs', beyond the plan."""
    return sum(job.sent(run.slots) * job.shots(run.shots) for job in _samples(jobs)) - planned_work(run, jobs)


def exclude_flagged(store: Store, run: RunRecord, backend: Backend) -> RunRecord | None:
    """Leave the slots of newly flagged copies and positions out of the run's
    jobs not yet sent, planned again on the remaining slots (within its
    reserve); returns the run as changed, None when nothing changed."""
    run = store.ledger.run(run.id)
    if run.quality != "auto" or run.repairs_done or run.slots == 1:
        return None
    quality = measured_quality(store, run)
    excluded = tuple(sorted(set(run.excluded_slots) | flagged_slots(run, quality)))
    if excluded == run.excluded_slots:
        return None
    why = _why(quality)
    if len(excluded) == run.slots:
        _give_up(store, run, f"every slot is flagged ({why}); nothing is left out, nothing repaired")
        return None
    used = tuple(slot for slot in range(run.slots) if slot not in excluded)
    jobs = store.ledger.jobs(run.id)
    unsent = [job for job in _samples(jobs) if job.state.value == "pending" and not job.may_exist_at_provider]
    replanned = _planned_again(backend, run, unsent, used)
    after = [(plan.executions, plan.shots or run.shots) for _, plan in replanned]
    kept = {job_id for job_id, _ in replanned}
    after += [(job.executions, job.shots(run.shots)) for job in unsent if job.id not in kept]
    more = sum(ceil_div(n, len(used)) * shots for n, shots in after) - sum(job.sent(run.slots) * job.shots(run.shots) for job in unsent)
    if not _fits(run, jobs, more):
        beyond = f"leaving slot(s) {_slots(excluded)} out would take the run beyond its reserve ({_reserve(run, jobs, more)})"
        _give_up(store, run, f"{why}: {beyond}; nothing more is repaired")
        return None
    line = f"left out slot(s) {_slots(excluded)} ({why}): {len(unsent)} job(s) not yet sent ride on the other {len(used)}"
    try:
        changed = store.ledger.exclude_slots(run, excluded, line, replanned)
    except ConflictError:
        return None  # a job was sent meanwhile: the next job's counts try again
    if changed is not None:
        log.warning("run %s: %s", run.id, line)
    return changed


def _planned_again(backend: Backend, run: RunRecord, unsent: Sequence[JobRecord], used: tuple[int, ...]) -> list[tuple[int | None, JobPlan]]:
    """The jobs not yet sent planned again on the ``used`` slots: their
    executions (a round's and a repair's apart, each with its shots) in jobs
    of whole packed executions, each rewriting a job's row in turn (None: a
    new job, where the slots left hold fewer a job). Left as they are (each
    riding on the used slots, its last packed execution part-filled) where
    fewer jobs would do: a row is never emptied."""
    profile = engine_profile(backend, backend.profile(offline=True), run.engine)
    groups: dict[tuple[int, int | None, int], list[JobRecord]] = {}
    for job in sorted(unsent, key=lambda j: j.position):
        groups.setdefault((job.round, job.own_shots, job.repair), []).append(job)
    replanned: list[tuple[int | None, JobPlan]] = []
    for (round_, shots, repair), group in groups.items():
        executions = sorted(int(e) for job in group for e in job.execution_indices)
        per_job = logical_per_job(backend, profile, shots or run.shots, len(used))
        packed = ceil_div(len(executions), len(used))
        # As evenly as whole packed executions allow, over at least as many jobs as before.
        jobs_needed = max(len(group), ceil_div(len(executions), per_job))
        if packed < jobs_needed:
            continue
        sizes = [(packed // jobs_needed + (i < packed % jobs_needed)) * len(used) for i in range(jobs_needed)]
        starts = np.cumsum([0, *sizes])
        plans = [
            JobPlan.of(executions[starts[i] : min(starts[i + 1], len(executions))], shots=shots, round=round_, repair=repair, slots_used=used)
            for i in range(jobs_needed)
        ]
        ids: list[int | None] = [job.id for job in group]
        replanned += list(zip(ids + [None] * (len(plans) - len(ids)), plans, strict=True))
    return replanned


def advance_repair(store: Store, run: RunRecord, backend: Backend) -> list[JobRecord] | None:
    """Start a repair of a run whose jobs have all ended: the circuits it
    measured on a left-out slot or in a flagged job, measured again on the
    good slots.

    Returns:
        The repair's jobs; [] when a repair was due but not sent (beyond the
        reserve: the run says so); None when there is nothing to repair, jobs
        are still out, or another process started it first.
    """
    if run.quality != "auto" or run.repairs_done:
        return None
    jobs = store.ledger.jobs(run.id)
    if any(job.state in UNFINISHED_STATES for job in jobs):
        return None
    if exclude_flagged(store, run, backend) is not None:
        run = store.ledger.run(run.id)
    if run.repairs_done:
        return None
    quality = measured_quality(store, run)
    excluded = set(run.excluded_slots)
    bad_jobs = _flagged_jobs(store, run, excluded)
    by_job = {job.id: job for job in jobs}
    order = store.ledger.run_circuit(run.id).sample_order
    row_of = {(int(code), int(index)): row for row, (code, index) in enumerate(order)}
    codes = {name: code for code, name in SPLIT_NAMES.items()}
    due: dict[tuple[int, int | None], list[int]] = {}  # (round, own shots) -> executions
    for split, index, circuit, round_, copy, position, job_id in store.results.current_slots(run.id):
        if position * run.copies + copy in excluded or job_id in bad_jobs:
            execution = row_of[(codes[split], index)] * run.circuits_per_sample + circuit
            due.setdefault((round_, by_job[job_id].own_shots), []).append(execution)
    if not due:
        return None
    circuits = sum(len(v) for v in due.values())
    if run.repairs >= MAX_REPAIRS:
        _give_up(store, run, f"{circuits} circuit(s) still flagged after {MAX_REPAIRS} repairs; left as measured")
        return []
    used = tuple(slot for slot in range(run.slots) if slot not in excluded)
    profile = engine_profile(backend, backend.profile(), run.engine)
    plans = []
    for (round_, shots), executions in sorted(due.items(), key=lambda item: item[0][0]):
        per_job = logical_per_job(backend, profile, shots or run.shots, len(used))
        executions.sort()
        plans += [
            JobPlan.of(executions[start : start + per_job], shots=shots, round=round_, repair=run.repairs + 1, slots_used=used)
            for start in range(0, len(executions), per_job)
        ]
    cost = sum(ceil_div(plan.executions, len(used)) * (plan.shots or run.shots) for plan in plans)
    why = _why(quality, bad_jobs)
    if not _fits(run, jobs, cost):
        _give_up(store, run, f"repair of {circuits} circuit(s) ({why}) not sent: it would take the run beyond its reserve ({_reserve(run, jobs, cost)})")
        return []
    if backend.is_paid and is_remote(backend):  # a repair is a paid submission: it must fit what the plan has left
        sent = [(ceil_div(plan.executions, len(used)), plan.shots or run.shots) for plan in plans]
        check_allowance(backend, estimate_jobs(backend, profile, sent, load_prices(), run_timing(backend, profile, run)))
    line = f"repair {run.repairs + 1}: {circuits} circuit(s) measured again on slot(s) {_slots(used)} ({why})"
    started = store.ledger.start_repair(run, plans, line)
    if started:
        log.warning("run %s: %s", run.id, line)
    return started


def repaired_summary(store: Store, run: RunRecord) -> str | None:
    """How many of the run's circuits were measured again and why, in one line; None when none were."""
    repaired = store.results.repaired(run.id)
    if not repaired:
        return None
    why = "; ".join(line for line in (run.quality_log or "").splitlines() if line.startswith("repair"))
    return f"{repaired:,} circuit(s) repaired by --quality auto ({why})"


def _flagged_jobs(store: Store, run: RunRecord, excluded: set[int]) -> set[int]:
    """Jobs behind the rest on what the run reads from the good slots (a job
    that ran on a left-out slot is behind for that slot alone: its circuits
    there are repaired with the slot's)."""
    fidelity, copy, position, job = store.results.fidelities(run.id, current=True)
    good = np.array([p * run.copies + c not in excluded for c, p in zip(copy, position, strict=True)], dtype=bool)
    if not good.any():
        return set()
    flags = flagged(fidelity[good], job[good], floor=run.quality_floor)
    return {key for key, bad in flags.items() if bad}


def _samples(jobs: Sequence[JobRecord]) -> list[JobRecord]:
    return [job for job in jobs if job.purpose == "samples"]


def _fits(run: RunRecord, jobs: Sequence[JobRecord], more: int) -> bool:
    return extra_work(run, jobs) + more <= run.quality_reserve * planned_work(run, jobs) + 1e-9


def _reserve(run: RunRecord, jobs: Sequence[JobRecord], more: int) -> str:
    base = planned_work(run, jobs)
    return (
        f"{more:,} more shot-executions on {extra_work(run, jobs):,} already added, against a reserve of "
        f"{run.quality_reserve:.0%} of {base:,}"
    )


def _give_up(store: Store, run: RunRecord, line: str) -> None:
    """End the run's repairs, saying why in its quality log."""
    if store.ledger.start_repair(run, [], line) is not None:
        log.warning("run %s: %s", run.id, line)


def _why(quality: RunQuality, bad_jobs: set[int] | None = None) -> str:
    """The flagged groups, each with its mean fidelity against the run's."""
    parts = [
        f"{kind} {g.key} at {g.mean_fidelity:.3f}"
        for kind, g in quality.flagged
        if kind != "job" or bad_jobs is None or g.key in bad_jobs
    ]
    mean = "unknown" if quality.mean_fidelity is None else f"{quality.mean_fidelity:.3f}"
    rule = f"below the floor {quality.floor:g}" if quality.floor is not None else "flagged"
    return f"{', '.join(parts) or 'nothing'} {rule}; the run's mean fidelity {mean}"


def _slots(slots: Sequence[int]) -> str:
    """Slots by number; many (a 272-slot run's good ones) by their count."""
    return ", ".join(str(s) for s in slots) if len(slots) <= 24 else f"{len(slots)} slots ({slots[0]}, {slots[1]}, ... {slots[-1]})"

