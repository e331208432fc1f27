"""The only way HE parties talk: bytes through a Channel that counts them.

Parties never share Python objects. Everything that crosses is ``bytes`` (a TenSEAL
``serialize()``, or an encoded array), counted per direction; a round is one request and its
reply. Keeping the parties this separable means the same code can later run them in separate
processes or hosts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

Payload = bytes | Sequence[bytes]


def flatten(blobs) -> list[bytes]:
    """The ciphertexts of a payload (bytes, or lists / dicts by chunk of them), in chunk order."""
    if isinstance(blobs, (bytes, bytearray)):
        return [bytes(blobs)]
    if isinstance(blobs, dict):
        return [b for c in sorted(blobs) for b in flatten(blobs[c])]
    return [b for item in blobs for b in flatten(item)]


def _size(payload: Payload) -> int:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return len(payload)
    if isinstance(payload, Sequence) and all(isinstance(p, (bytes, bytearray, memoryview)) for p in payload):
        return sum(len(p) for p in payload)
    raise TypeError(f"only bytes cross a Channel; got {type(payload).__name__}")


@dataclass
class Channel:
    """Counts bytes per (sender, receiver) and request/reply rounds.

    ``send`` returns the payload unchanged (the receiver's copy); ``request`` is a send that opens
    a round. ``transcript`` optionally keeps every message for security tests. ``stages`` counts
    bytes, messages and rounds per protocol stage (whatever ``stage`` names when they are sent).
    ``blobs`` counts the ciphertexts (serialized objects) moved.

    Worker processes count their share of a message on channels of their own; :meth:`merge` adds
    those counts: bytes add up, while a message (or round) split across workers counts once.
    """

    keep_transcript: bool = False
    bytes: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    messages: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    rounds: int = 0
    transcript: list[tuple[str, str, str, Payload]] = field(default_factory=list)
    #: the protocol stage that traffic is attributed to (set by the protocol driver)
    stage: str = ""
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    blobs: int = 0

    def _stage(self) -> dict[str, int]:
        return self.stages.setdefault(self.stage, {"bytes": 0, "messages": 0, "rounds": 0})

    def send(self, sender: str, receiver: str, payload: Payload, tag: str = "") -> Payload:
        n = _size(payload)
        self.blobs += 1 if isinstance(payload, (bytes, bytearray, memoryview)) else len(payload)
        self.bytes[(sender, receiver)] += n
        self.messages[(sender, receiver)] += 1
        st = self._stage()
        st["bytes"] += n
        st["messages"] += 1
        if self.keep_transcript:
            self.transcript.append((sender, receiver, tag, payload))
        return payload

    def request(self, sender: str, receiver: str, payload: Payload, tag: str = "") -> Payload:
        self.rounds += 1
        self._stage()["rounds"] += 1
        return self.send(sender, receiver, payload, tag)

    def snapshot(self) -> dict:
        """This channel's counts (and transcript) as plain data, for :meth:`merge` in another process."""
        return {"bytes": dict(self.bytes), "messages": dict(self.messages), "rounds": self.rounds,
                "stages": {k: dict(v) for k, v in self.stages.items()}, "blobs": self.blobs,
                "transcript": list(self.transcript)}

    def merge(self, parts: list[dict]) -> None:
        """Add the counts of worker channels that each carried a share of the same messages."""
        parts = [p for p in parts if p["blobs"]]
        if not parts:
            return
        for p in parts:
            for pair, n in p["bytes"].items():
                self.bytes[pair] += n
            self.blobs += p["blobs"]
        for pair in {pair for p in parts for pair in p["messages"]}:
            self.messages[pair] += max(p["messages"].get(pair, 0) for p in parts)
        self.rounds += max(p["rounds"] for p in parts)
        for stage in {s for p in parts for s in p["stages"]}:
            mine = self.stages.setdefault(stage, {"bytes": 0, "messages": 0, "rounds": 0})
            theirs = [p["stages"].get(stage, {}) for p in parts]
            mine["bytes"] += sum(t.get("bytes", 0) for t in theirs)
            mine["messages"] += max(t.get("messages", 0) for t in theirs)
            mine["rounds"] += max(t.get("rounds", 0) for t in theirs)
        if self.keep_transcript:
            # one entry per message: the workers' shares concatenated in worker (= chunk) order
            merged: dict[tuple, list] = {}
            for p in parts:
                for sender, receiver, tag, payload in p["transcript"]:
                    merged.setdefault((sender, receiver, tag), []).extend(flatten(payload))
            self.transcript.extend((s, r, t, pl) for (s, r, t), pl in merged.items())

    def sent(self, party: str) -> int:
        return sum(n for (s, _), n in self.bytes.items() if s == party)

    def received(self, party: str) -> int:
        return sum(n for (_, r), n in self.bytes.items() if r == party)

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def charge(self, costs) -> None:
        """Add this channel's byte counts and rounds to a :class:`methods.base.Costs`."""
        for party in {p for pair in self.bytes for p in pair}:
            pc = costs.party(party)
            pc.bytes_sent += self.sent(party)
            pc.bytes_received += self.received(party)
        costs.rounds += self.rounds
