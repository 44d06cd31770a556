"""Online template miner: Drain's prefix tree with masking, token-level variables and merging.

A message is masked (:mod:`lazarus.logmine.masking`) and reduced to its *key*, the tokens that
carry template identity. A known key resolves with one dict look-up, which is why the miner is
fast. A new key is compared with the templates in its bucket (Drain's first tree levels: the
token count, then the first plain word) and joins one when every differing token differs only
inside a variable (``rhost=<*>`` vs ``rhost=zummit``) and at least half of the positions not yet
known to be variable are equal (:mod:`lazarus.logmine.compare`). A variable that masking
removed from one key but not from the other (``wpad:80`` vs ``10.0.0.1:80``, a user named
``ms`` read as a unit) is bridged by comparing with templates a token or two longer or shorter.

Plain words are constants until the stream proves otherwise: once ``PLAIN_WORD_SIBLINGS``
templates differ only in the same position (or the same two or three plain-word positions),
those positions become variables and the templates merge (user names after ``for user``). The
word before such a position is remembered, so the next template with a word after ``user``
needs only two siblings. This keeps ``view``/``modify`` and ``HIGHMEM``/``LOWMEM`` apart, which
a similarity threshold cannot do.

When a template generalises it absorbs the templates it now covers; their ids stay valid as
aliases (:meth:`TemplateMiner.resolve`), so an id handed out once never dangles. Ids are a hash
of the first key seen, so the same stream always yields the same ids.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import islice
from typing import NamedTuple

from lazarus.logmine.compare import MAX_GAP, covers, differing, generalised, join
from lazarus.logmine.masking import WILDCARD, is_constant, key_of, mask

# How many templates of one bucket a new key is compared with (the most recently used).
MAX_CANDIDATES = 256
# Known keys kept for the one-look-up path; beyond this the oldest half is forgotten (a
# forgotten key re-joins its template through the bucket the next time it is seen).
MAX_KEYS = 200_000
# Known keys written with the state (the most recent ones; older keys re-join on sight).
SAVED_KEYS = 10_000
# Characters of templates compared with one new key, at most, over every bucket it may join: a
# line unlike anything seen (binary noise) costs a bounded time, however many templates noise
# made. Comparing costs about a character's work; 8,192 covers 80 templates of 100 characters.
MAX_COMPARED_CHARS = 8192
# Templates kept at most; past this a key that joins none is counted under OVERFLOW_ID, so a
# stream of noise cannot grow the state (or the time of the siblings' walk) without end.
MAX_TEMPLATES = 20_000
OVERFLOW_ID = "T-overflow"
# Plain-word positions turn variable when this many templates (of three tokens or more)
# differ only there.
PLAIN_WORD_SIBLINGS = 4

Key = tuple[str, ...]


class Match(NamedTuple):
    """What the miner decided for one message."""

    template_id: str
    template: str
    is_new: bool


class Cluster:
    """One template: its key (generalised tokens), how it prints, how often it was seen."""

    __slots__ = ("count", "display", "first_seen", "id", "key", "key_index", "last_seen", "text")

    def __init__(
        self,
        id: str,
        key: list[str],
        display: list[str],
        key_index: list[int],
        count: int = 0,
        first_seen: float | None = None,
        last_seen: float | None = None,
    ):
        self.id, self.key, self.display, self.key_index = id, key, display, key_index
        self.count, self.first_seen, self.last_seen = count, first_seen, last_seen
        self.text = " ".join(display)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__ if name != "text"}


class TemplateMiner:
    """Learns templates from a stream of messages; state round-trips through :meth:`to_dict`.

    One writer at a time: share a miner between threads only behind a lock.
    """

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}
        self.aliases: dict[str, str] = {}
        self._by_key: dict[Key, Cluster] = {}
        self._buckets: dict[tuple[int, str], list[Cluster]] = defaultdict(list)
        self._variable_after: set[str] = set()
        self._budget = MAX_COMPARED_CHARS

    def add(self, message: str, at: float | None = None) -> Match:
        """Assign ``message`` to a template, learning a new one if nothing fits."""
        key = key_of(message)
        cluster = self._by_key.get(key)
        is_new = False
        if cluster is None:
            cluster, is_new = self._learn(key, message)
            if len(self._by_key) > MAX_KEYS:
                for old in list(islice(self._by_key, MAX_KEYS // 2)):
                    del self._by_key[old]
        cluster.count += 1
        if at is not None:
            if cluster.first_seen is None:
                cluster.first_seen = at
            cluster.last_seen = at
        return Match(cluster.id, cluster.text, is_new)

    def resolve(self, template_id: str) -> str:
        """The live id for any id this miner handed out (a merged id follows its alias)."""
        for _ in range(len(self.aliases) + 1):
            if template_id not in self.aliases:
                break
            template_id = self.aliases[template_id]
        return template_id

    def template(self, template_id: str) -> str:
        """The current text of a template, ``<*>`` marking its variables."""
        return self.clusters[self.resolve(template_id)].text

    # -- learning a new key --------------------------------------------------------------

    def _learn(self, key: Key, message: str) -> tuple[Cluster, bool]:
        # the same length; then a template with pure variables this key lacks (the variable
        # was masked away here); then one without a partly variable token this key has
        self._budget = MAX_COMPARED_CHARS
        known = self._best(key) or self._longer(key) or self._shorter(key)
        if known is None and len(self.clusters) >= MAX_TEMPLATES:
            return self._overflow(), False
        if known is not None:
            self._by_key[key] = known
            bucket = self._buckets[_bucket_of(known.key)]
            if bucket[-1] is not known:  # most recently useful last: always a candidate
                bucket.remove(known)
                bucket.append(known)
            return known, False
        tokens = mask(message)
        key_index = [i for i, tok in enumerate(tokens) if is_constant(tok)]
        cluster = Cluster(_new_id(key, self.clusters), list(key), tokens, key_index)
        self.clusters[cluster.id] = cluster
        self._by_key[key] = cluster
        self._place(cluster)
        keeper = self._merge_siblings(cluster)
        return (keeper, False) if keeper is not None else (cluster, True)

    def _best(self, key: Key) -> Cluster | None:
        """The template of ``key``'s bucket that joins it with most equal tokens, widened."""
        best, best_score = None, -1
        for cand in self._candidates(_bucket_of(key)):
            if join(cand.key, key) is not None:
                score = sum(a == b for a, b in zip(cand.key, key, strict=True))
                if score > best_score:
                    best, best_score = cand, score
        if best is not None:
            self._generalise(best, join(best.key, key))
        return best

    def _longer(self, key: Key) -> Cluster | None:
        """A template with up to ``MAX_GAP`` more tokens, pure variables, that ``key`` lacks."""
        length, anchor = _bucket_of(key)
        for gap in range(1, MAX_GAP + 1):
            for cand in self._candidates((length + gap, anchor)):
                if covers(cand.key, key):
                    return cand
        return None

    def _shorter(self, key: Key) -> Cluster | None:
        """A template matching ``key`` without one of its partly variable tokens."""
        if len(key) < 3:  # too little left to tell templates apart
            return None
        for pos, tok in enumerate(key):
            if WILDCARD in tok:
                sub = key[:pos] + key[pos + 1 :]
                found = self._by_key.get(sub) or self._best(sub)
                if found is not None:
                    return found
        return None

    def _candidates(self, bucket: tuple[int, str]) -> list[Cluster]:
        """The most recently used templates of ``bucket``, as many as the budget still allows."""
        if self._budget <= 0:
            return []
        found = self._buckets.get(bucket, [])[-MAX_CANDIDATES:]
        taken = []
        for cand in reversed(found):  # most recently used first
            taken.append(cand)
            self._budget -= len(cand.text)
            if self._budget <= 0:
                break
        return taken[::-1]

    def _overflow(self) -> Cluster:
        """The one template that counts what came past MAX_TEMPLATES (not cached by key)."""
        if OVERFLOW_ID not in self.clusters:
            self.clusters[OVERFLOW_ID] = Cluster(OVERFLOW_ID, [WILDCARD], [WILDCARD], [0])
        return self.clusters[OVERFLOW_ID]

    def _generalise(self, cluster: Cluster, key: list[str]) -> None:
        """Widen ``cluster`` to ``key`` and absorb the other templates it now covers."""
        if key == cluster.key:
            return
        self._buckets[_bucket_of(cluster.key)].remove(cluster)
        for pos, tok in enumerate(key):
            if tok != cluster.key[pos]:
                cluster.key[pos] = tok
                cluster.display[cluster.key_index[pos]] = tok
        cluster.text = " ".join(cluster.display)
        self._buckets[_bucket_of(cluster.key)].append(cluster)
        length, anchor = _bucket_of(cluster.key)
        for gap in range(MAX_GAP + 1):
            bucket = self._buckets.get((length - gap, anchor), [])
            for other in [c for c in bucket if c is not cluster and covers(cluster.key, c.key)]:
                self._absorb(cluster, other)

    def _place(self, cluster: Cluster) -> None:
        self._buckets[_bucket_of(cluster.key)].append(cluster)

    def _absorb(self, keeper: Cluster, other: Cluster) -> None:
        keeper.count += other.count
        if other.first_seen is not None:
            keeper.first_seen = min(other.first_seen, keeper.first_seen or other.first_seen)
            keeper.last_seen = max(other.last_seen or 0.0, keeper.last_seen or 0.0)
        self.aliases[other.id] = keeper.id
        del self.clusters[other.id]
        self._buckets[_bucket_of(other.key)].remove(other)
        for key, owner in self._by_key.items():
            if owner is other:
                self._by_key[key] = keeper

    def _merge_siblings(self, cluster: Cluster) -> Cluster | None:
        """Turn plain-word positions into variables once enough siblings differ only there.

        Siblings are templates of the same bucket (so they share the first plain word, which
        Drain's tree too takes for a constant) that differ from ``cluster`` in the same
        positions; more than one position only when all those tokens are plain words
        (``worker ann finished job tidy``) and the equal positions stay the majority.
        """
        key = cluster.key
        if len(key) < 3:
            return None
        groups: dict[tuple[int, ...], list[Cluster]] = defaultdict(list)
        for other in self._buckets[_bucket_of(key)][-MAX_CANDIDATES:]:
            if other is not cluster:
                diff = differing(other.key, key)
                if diff and len(diff) * 2 < len(key):
                    groups[diff].append(other)
        for diff, siblings in groups.items():
            needed = PLAIN_WORD_SIBLINGS
            if len(diff) > 1:
                if not all(c.key[p].isalpha() for c in (cluster, *siblings) for p in diff):
                    continue
            elif diff[0] > 0 and key[diff[0] - 1] in self._variable_after:
                needed = 2
            if len(siblings) + 1 < needed:
                continue
            keeper = siblings[0]
            widened = list(keeper.key)
            for pos in diff:
                widened[pos] = generalised(widened[pos], key[pos], force=True)
            self._generalise(keeper, widened)
            for pos in diff:
                if pos > 0 and key[pos - 1] not in self._variable_after:
                    self._variable_after.add(key[pos - 1])
                    self._spread(key[pos - 1])
            return keeper
        return None

    def _spread(self, word: str) -> None:
        """Re-check templates with ``word`` now known to precede a variable."""
        for cluster in list(self.clusters.values()):
            if cluster.id in self.clusters and word in cluster.key[:-1]:
                self._merge_siblings(cluster)

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain data for JSON: everything needed to continue where this miner stopped."""
        return {
            "version": 1,
            "clusters": [c.to_dict() for c in self.clusters.values()],
            "aliases": self.aliases,
            "keys": [[list(k), c.id] for k, c in list(self._by_key.items())[-SAVED_KEYS:]],
            "variable_after": sorted(self._variable_after),
        }

    @classmethod
    def from_dict(cls, data: dict) -> TemplateMiner:
        """A miner that continues from :meth:`to_dict`'s output."""
        miner = cls()
        miner.aliases = dict(data.get("aliases", {}))
        miner._variable_after = set(data.get("variable_after", []))
        for raw in data.get("clusters", []):
            cluster = Cluster(**raw)
            miner.clusters[cluster.id] = cluster
            miner._place(cluster)
        for key, cid in data.get("keys", []):
            miner._by_key[tuple(key)] = miner.clusters[miner.resolve(cid)]
        return miner


def _bucket_of(key: Key | list[str]) -> tuple[int, str]:
    """Token count plus the first plain word: the first levels of Drain's prefix tree."""
    return len(key), next((t for t in key if t.isalpha()), "")


def _new_id(key: Key, taken: dict[str, Cluster]) -> str:
    """A stable id: a hash of the first key seen, so the same input yields the same ids."""
    digest = hashlib.blake2b("\x1f".join(key).encode("utf-8", "replace"), digest_size=5)
    base = "T" + digest.hexdigest()
    tid, n = base, 1
    while tid in taken:
        tid, n = f"{base}-{n}", n + 1
    return tid
