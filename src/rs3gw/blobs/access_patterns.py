"""Access-pattern detection and next-read prediction for the predictive cache.

Statistics are per blob id (blobs are immutable, so an id's history never goes stale), kept as
exponential moving averages so memory per blob is constant. A pattern decides how long an entry is
worth keeping (adaptive TTL) and how valuable it is when memory runs short (priority):

- ``periodic``: reads at a steady interval (coefficient of variation of the gaps below 0.35); kept
  for a bit over two periods, since the next read is predictable.
- ``bursty``: several reads within a short span after a long quiet gap; kept briefly, the burst
  ends soon.
- ``trending``: the read rate over the recent reads is clearly rising; kept longest.
- ``steady``/``new``: anything else; the base TTL.

Prediction is a successor table: blob B was read right after blob A ``n`` times out of A's ``t``
successions, so after a read of A, B is predicted with confidence ``n / t``. An epoch-wise replay of a
training set (the same keys in the same order, epoch after epoch) reaches confidence 1 after one
epoch; a freshly shuffled order stays under any useful threshold, so nothing is fetched in vain.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

ALPHA = 0.3  # EMA weight of the newest gap
MAX_TRACKED = 200_000  # blobs with statistics; least recently read forgotten first
MAX_SUCCESSORS = 4  # successor candidates kept per blob


@dataclass
class BlobStats:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    ema_gap: float = 0.0  # seconds
    ema_var: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=8))

    def touch(self, now: float) -> None:
        if self.count:
            gap = now - self.last
            if self.count == 1:
                self.ema_gap = gap
            else:
                diff = gap - self.ema_gap
                self.ema_gap += ALPHA * diff
                self.ema_var = (1 - ALPHA) * (self.ema_var + ALPHA * diff * diff)
        else:
            self.first = now
        self.count += 1
        self.last = now
        self.recent.append(now)

    def pattern(self) -> str:
        if self.count < 3:
            return "new"
        r = list(self.recent)
        gaps = [b - a for a, b in itertools.pairwise(r)]
        if len(gaps) >= 3:
            mean = sum(gaps) / len(gaps)
            if mean > 0:
                cv = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean
                if cv < 0.35:
                    return "periodic"
            last3 = gaps[-2:]
            if mean > 0 and max(last3) < mean / 4:
                return "bursty"
            half = len(gaps) // 2
            older, newer = gaps[:half], gaps[half:]
            if sum(newer) / len(newer) < 0.5 * (sum(older) / len(older)):
                return "trending"
        return "steady"

    def ttl(self, base: float) -> float:
        """Adaptive TTL: how long after its last read an entry stays worth its memory."""
        p = self.pattern()
        if p == "periodic":
            return max(base, 2.5 * self.ema_gap)
        if p == "bursty":  # the burst's own pace, not the long-run average
            r = self.recent
            return max(5.0, min(base, 20 * (r[-1] - r[-2])))
        if p == "trending":
            return 2 * base
        return base

    def priority(self, now: float) -> float:
        """Priority score for eviction: frequency (reads per second of history) decayed by idleness,
        weighted by how predictable the pattern is."""
        span = max(now - self.first, 1.0)
        rate = self.count / span
        idle = max(now - self.last, 0.0)
        weight = {"periodic": 2.0, "trending": 1.5, "bursty": 1.0, "steady": 1.0, "new": 0.5}[self.pattern()]
        return weight * rate / (1.0 + idle / max(self.ema_gap or 1.0, 1.0))


class Predictor:
    """Per-blob statistics plus the successor table (what tends to be read next)."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self.max_tracked = max_tracked
        self.stats: OrderedDict[str, BlobStats] = OrderedDict()
        self.successors: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._previous: str | None = None

    def record(self, blob_id: str, now: float) -> BlobStats:
        st = self.stats.get(blob_id)
        if st is None:
            st = self.stats[blob_id] = BlobStats()
            if len(self.stats) > self.max_tracked:
                self.stats.popitem(last=False)
        else:
            self.stats.move_to_end(blob_id)
        st.touch(now)
        prev, self._previous = self._previous, blob_id
        if prev is not None and prev != blob_id:
            nxt = self.successors.get(prev)
            if nxt is None:
                nxt = self.successors[prev] = {}
                if len(self.successors) > self.max_tracked:
                    self.successors.popitem(last=False)
            else:
                self.successors.move_to_end(prev)
            nxt[blob_id] = nxt.get(blob_id, 0) + 1
            if len(nxt) > MAX_SUCCESSORS:  # forget the weakest candidate
                del nxt[min(nxt, key=nxt.__getitem__)]
        return st

    def predict(self, blob_id: str, threshold: float, depth: int) -> list[tuple[str, float]]:
        """Blobs likely read next after ``blob_id``, following the chain while the joint confidence
        stays at or above ``threshold``."""
        out: list[tuple[str, float]] = []
        seen = {blob_id}
        cur, conf = blob_id, 1.0
        for _ in range(depth):
            nxt = self.successors.get(cur)
            if not nxt:
                break
            best = max(nxt, key=nxt.__getitem__)
            conf *= nxt[best] / sum(nxt.values())
            if conf < threshold or best in seen:
                break
            out.append((best, conf))
            seen.add(best)
            cur = best
        return out

    def ranked(self, strategy: str, now: float) -> list[str]:
        """Blob ids ordered for a warming strategy (best first)."""
        items = list(self.stats.items())
        if strategy == "most-frequent":
            items.sort(key=lambda kv: kv[1].count, reverse=True)
        elif strategy == "most-recent":
            items.sort(key=lambda kv: kv[1].last, reverse=True)
        elif strategy == "highest-priority":
            items.sort(key=lambda kv: kv[1].priority(now), reverse=True)
        else:  # predictive: soonest predicted next read (last read + typical gap) first
            items = [kv for kv in items if kv[1].count >= 2]
            items.sort(key=lambda kv: kv[1].last + kv[1].ema_gap)
        return [k for k, _ in items]
