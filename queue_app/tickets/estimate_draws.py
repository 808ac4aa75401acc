"""Random draws of the wait estimator (estimates.py), one stream per ticket.

Every number a run draws for a ticket (its visit length, its patience) comes from that ticket's
own stream, a counter-based hash of (salt, kind, id), not from one generator consumed along the
queue. So the draws of the people already in line do not depend on who joins after them: a
played queue extended by one ticket equals a full run of the longer queue (played_queue.py), and
the same queue gives the same figures at every push.
"""
import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
# Kinds of draw; ticket ids and appointment ids live in different kinds.
VISIT, PATIENCE, REMAINING, BOOKED_VISIT, COMES, ARRIVES, REMOTE_COMES, REMOTE_ARRIVES = range(8)


def _mix(value: int) -> int:
    """SplitMix64's finaliser on a Python int."""
    value &= _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


class TicketDraws:
    def __init__(self, replications: int, salt: int):
        self.steps = np.arange(1, replications + 1, dtype=np.uint64) * _GOLDEN
        self.salt = _mix(salt)

    def _key(self, kind: int, ident: tuple[int, ...]) -> int:
        key = self.salt
        for part in (kind, *ident):
            key = _mix(key ^ _mix(part + 0x632BE59BD9B4E019))
        return key

    @staticmethod
    def _finish(x: np.ndarray) -> np.ndarray:
        x ^= x >> _S30
        x *= _MIX1
        x ^= x >> _S27
        x *= _MIX2
        x ^= x >> _S31
        return (x >> _S11).astype(np.float64) * (1.0 / (1 << 53))

    def uniform(self, kind: int, *ident: int) -> np.ndarray:
        """One uniform in [0, 1) per replication, the same for the same (kind, ident) every time."""
        return self._finish(self.steps + np.uint64(self._key(kind, ident)))

    def uniforms(self, kind: int, idents: list[int]) -> np.ndarray:
        """`uniform(kind, i)` for each i, as rows of one matrix (one vectorised pass for a run)."""
        keys = np.array([self._key(kind, (i,)) for i in idents], dtype=np.uint64)
        return self._finish(keys[:, None] + self.steps[None, :])


def pick(sample: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    return sample[np.minimum((uniform * len(sample)).astype(np.intp), len(sample) - 1)]
