"""Progress reporting that the library can call and the CLI can draw.

Library functions take an optional :class:`Progress`; the default is silent,
the CLI passes :class:`RichProgress`, which draws on stderr so that --json
output on stdout stays clean.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, amount: float = 1) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]: ...


class _SilentTask:
    def advance(self, amount: float = 1) -> None:
        pass


class SilentProgress:
    """Reports nothing; the library default."""

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        yield _SilentTask()


class RichProgress:
    """Draws one rich progress bar per task on stderr."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        ) as bar:
            task_id = bar.add_task(description, total=total)

            class _Task:
                def advance(self, amount: float = 1) -> None:
                    bar.advance(task_id, amount)

            yield _Task()


def keras_callback(task: Task):
    """A Keras callback that advances ``task`` once per epoch."""
    import keras

    class _EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            task.advance(1)

    return _EpochProgress()


def import_keras(seed: int | None = None):
    """Import Keras quietly and, when given a seed, make training reproducible."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules:
        _import_muted("keras")
    import keras

    # Predicting on arrays of several sizes makes tf.function retrace and warn;
    # harmless here, and qhw's own messages should stay readable.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if seed is not None:
        keras.utils.set_random_seed(seed)
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return keras


def _import_muted(module: str) -> None:
    """Import with file descriptor 2 muted, replaying it if the import fails.

    TensorFlow's C++ runtime prints oneDNN and CUDA-probing lines at import,
    before absl reads TF_CPP_MIN_LOG_LEVEL, on every CPU-only machine; they
    would bury qhw's own one-line messages.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            importlib.import_module(module)
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
