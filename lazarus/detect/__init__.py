"""Anomaly detection over many series at once: numpy, causal, O(new points) per watch cycle.

- ``ensemble``: the statistical ensemble (EWMA/EWMV z with a robust floor, seasonal residual,
  records, calibrated per series and said once per episode) -> score in [0, 1] and a label.
- ``absence``: a series that stops; ``peer``: a host unlike its peer group;
  ``cusum``: persistent changes in level or variance, and the rate of change.
- ``robust``: rolling median/MAD z with a robust scale floor; ``esd``: seasonal decomposition +
  generalised ESD (causal S-H-ESD).
- ``threshold``: bounds with ``for`` cycles and failing probes (the foundation's detectors);
  ``hosts``: a host whose SSH and every probe fail is ``host_down``.
- ``csvfile``: NAB-format CSV in and out through the watch's own detector (`lazarus detect`,
  bench/nab.py).
- ``explain``: which view fired and the band it expected, for an anomaly's summary.
"""

from lazarus.detect.absence import Absence
from lazarus.detect.cusum import Cusum, RateOfChange
from lazarus.detect.ensemble import Ensemble, EnsembleParams, Scores, params_for
from lazarus.detect.esd import SeasonalEsd
from lazarus.detect.peer import peer_scores
from lazarus.detect.robust import RollingMad

__all__ = [
    "Absence",
    "Cusum",
    "Ensemble",
    "EnsembleParams",
    "RateOfChange",
    "RollingMad",
    "Scores",
    "SeasonalEsd",
    "params_for",
    "peer_scores",
]
