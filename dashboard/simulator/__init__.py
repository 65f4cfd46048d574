"""A simulated Kubernetes cluster that writes real API objects (no Django imports).

`Simulator.from_scenario("demo")` builds a settled cluster in an `ObjectStore`; `step()`
advances simulated time deterministically, `start()` runs it in real time.
"""

from .cluster import Simulator

__all__ = ["Simulator"]
