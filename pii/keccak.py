"""Keccak-256 (the pre-standard SHA-3 that Ethereum uses), for EIP-55 address checksums.

hashlib's sha3_256 pads differently (FIPS 202), so it cannot check EIP-55; a
40-byte address hashes in microseconds here, and this avoids a dependency for it.
"""

from __future__ import annotations

RATE = 136  # bytes absorbed per permutation for a 256-bit output
MASK = (1 << 64) - 1


def _round_constants() -> list[int]:
    """The 24 iota constants, from the spec's LFSR rather than a copied table."""
    out, state = [], 1
    for _ in range(24):
        constant = 0
        for j in range(7):
            state = ((state << 1) ^ ((state >> 7) * 0x71)) & 0xFF
            if state & 2:
                constant ^= 1 << ((1 << j) - 1)
        out.append(constant)
    return out


def _rotations() -> list[list[int]]:
    """rho offsets per lane [x][y], from the spec's walk over the state."""
    offsets = [[0] * 5 for _ in range(5)]
    x, y = 1, 0
    for t in range(24):
        offsets[x][y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return offsets


ROUND_CONSTANTS = _round_constants()
ROTATIONS = _rotations()


def _rotate(lane: int, n: int) -> int:
    return ((lane << n) | (lane >> (64 - n))) & MASK if n else lane


def _permute(a: list[list[int]]) -> None:
    for constant in ROUND_CONSTANTS:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rotate(c[(x + 1) % 5], 1) for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rotate(a[x][y] ^ d[x], ROTATIONS[x][y])
        for x in range(5):
            for y in range(5):
                a[x][y] = b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y])
        a[0][0] ^= constant


def keccak256(data: bytes) -> bytes:
    padded = bytearray(data) + b"\x01" + b"\x00" * (-(len(data) + 1) % RATE)
    padded[-1] |= 0x80
    state = [[0] * 5 for _ in range(5)]
    for block in range(0, len(padded), RATE):
        for i in range(RATE // 8):
            lane = int.from_bytes(padded[block + 8 * i : block + 8 * i + 8], "little")
            state[i % 5][i // 5] ^= lane
        _permute(state)
    return b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))
