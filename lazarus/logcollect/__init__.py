"""Service logs, read incrementally over SSH (or from local files) into detection signals.

    batch = collect(config, store, executor)        # new lines per (host, service), cursors saved
    feed(signals, batch)                            # lazarus.logmine.LogSignals
    anomalies = new_error_anomalies(signals, batch) # log_new_error per service instance
    anomalies += error_spikes(signals, batch, store, config)  # log_error_spike per template

:mod:`lazarus.logcollect.tail` reads one file (rotation, truncation, partial and hostile lines,
a byte budget per cycle); :mod:`lazarus.logcollect.journal` reads a systemd unit's journal with
a journalctl cursor; :mod:`lazarus.logcollect.offsets` keeps each cursor in the store;
:mod:`lazarus.logcollect.rates` scores error-template rates with the detection ensemble.
"""

from __future__ import annotations

from lazarus.logcollect.anomalies import SYMPTOM, feed, new_error_anomalies
from lazarus.logcollect.cycle import FileLines, LogBatch, collect, signals_path
from lazarus.logcollect.journal import JournalReader, JournalResult, read_journal
from lazarus.logcollect.offsets import FileState, JournalCursors, JournalState, Offsets
from lazarus.logcollect.rates import error_spikes
from lazarus.logcollect.tail import (
    Chunk,
    Cursor,
    LocalReader,
    LogReadError,
    SshReader,
    TailResult,
    parse_output,
    split_lines,
    tail_file,
)

__all__ = [
    "SYMPTOM",
    "Chunk",
    "Cursor",
    "FileLines",
    "FileState",
    "JournalCursors",
    "JournalReader",
    "JournalResult",
    "JournalState",
    "LocalReader",
    "LogBatch",
    "LogReadError",
    "Offsets",
    "SshReader",
    "TailResult",
    "collect",
    "error_spikes",
    "feed",
    "new_error_anomalies",
    "parse_output",
    "read_journal",
    "signals_path",
    "split_lines",
    "tail_file",
]
