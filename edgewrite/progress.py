"""Progress for long work: a rich bar on a terminal; in a log file or CI (no terminal), a plain line at
the start, every few percent and at the end, so a log never goes minutes without a line."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        quiet: bool = False,
        every_percent: float = 5.0,
        fields: dict[str, Any] | None = None,
        fmt: str = "",
        stream: Any = None,
    ) -> None:
        """``fmt`` formats extra ``fields`` for display, e.g. "loss {loss:.3f}"."""
        from rich.console import Console

        self.label, self.total, self.quiet = label, max(int(total), 0), quiet
        self.fields = dict(fields or {})
        self.fmt = fmt
        self.every = every_percent
        self.console = Console(file=stream or sys.stderr)
        self.completed = 0
        self._last_pct = -1e9
        self._bar: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()
        self._entered = False

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        self._entered = True
        if self.quiet:
            return self
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[extra]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=0, extra=self._extra())
        else:
            self._plain(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.quiet or not self._entered:
            return
        self._entered = False
        if self._bar is not None:
            self._bar.stop()
        elif exc[0] is None:
            self._plain(force=True, done=True)

    def _extra(self) -> str:
        try:
            return self.fmt.format(**self.fields) if self.fmt else ""
        except (KeyError, ValueError, TypeError):
            return ""

    def _plain(self, force: bool = False, done: bool = False) -> None:
        pct = 100.0 * self.completed / self.total if self.total else 100.0
        if not force and pct - self._last_pct < self.every:
            return
        self._last_pct = pct
        elapsed = time.perf_counter() - self._t0
        extra = self._extra()
        state = "done" if done else f"{pct:.0f}%"
        self.console.print(
            f"{self.label}: {self.completed}/{self.total} ({state}) {elapsed:.0f}s" + (f" {extra}" if extra else ""),
            markup=False,
            highlight=False,
        )

    def update(self, completed: int | None = None, advance: int = 0, **fields: Any) -> None:
        if completed is not None:
            self.completed = completed
        self.completed += advance
        self.fields.update(fields)
        if self.quiet or not self._entered:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, extra=self._extra())
        else:
            self._plain()

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.update(advance=n, **fields)

    def log(self, line: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if not self.quiet:
            self.console.print(line, markup=False, highlight=False)
