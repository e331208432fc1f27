"""The K-means data owner: its records and the public context; it encrypts its columns.

A shard holds one party's context and its share of the chunks (chunk ``c`` covers records
``c*S .. (c+1)*S - 1``, ``S`` slots, the last chunk zero-padded). Shards of different parties never
share objects: the protocol (:mod:`methods.he.kmeans_protocol`) moves their bytes through a
:class:`~methods.he.transport.Channel`, and :class:`~methods.he.transport.Pool` may run them in
worker processes.
"""

from __future__ import annotations

import numpy as np

from methods.he.crypto import Codec, HEParams, load_context, pad


class OwnerShard:
    """Encrypts the owner's (already encoded) records of some chunks."""

    def __init__(self, params: dict, public_context: bytes):
        self.params = HEParams.from_dict(params)
        self.codec = Codec(load_context(public_context), self.params)

    def encrypt(self, blocks: dict[int, np.ndarray]) -> dict[int, list[bytes]]:
        S = self.params.slots
        out = {}
        for c, block in blocks.items():
            padded = pad(block, S)
            out[c] = [self.codec.encrypt_bytes(padded[:, f]) for f in range(block.shape[1])]
        return out
