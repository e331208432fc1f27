"""Encryption parameters and the 128-bit security check.

The bounds are the HomomorphicEncryption.org standard's maximum total coefficient-modulus bit
length for classical 128-bit security with a ternary secret (Albrecht et al., "Homomorphic
Encryption Security Standard", 2018, Table 1), the same table SEAL enforces.
"""

from __future__ import annotations

#: poly_modulus_degree N -> max log2(q) for 128-bit classical security
MAX_LOGQ_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}


class InsecureParameters(ValueError):
    """The chosen parameters fall short of 128-bit security."""


def check_security(poly_modulus_degree: int, coeff_mod_bit_sizes, allow_insecure: bool = False) -> int:
    """Raise unless (N, moduli) meet 128-bit security; returns the total log q.

    ``allow_insecure`` exists for fast tests only and is recorded wherever it is used.
    """
    n = int(poly_modulus_degree)
    logq = int(sum(coeff_mod_bit_sizes))
    if n not in MAX_LOGQ_128:
        raise InsecureParameters(
            f"poly_modulus_degree={n}; expected a power of two in {sorted(MAX_LOGQ_128)}")
    if logq > MAX_LOGQ_128[n] and not allow_insecure:
        raise InsecureParameters(
            f"poly_modulus_degree={n} with coeff_mod_bit_sizes={list(coeff_mod_bit_sizes)} "
            f"(log q = {logq}) is below 128-bit security: the HE standard allows log q <= "
            f"{MAX_LOGQ_128[n]} for N={n}. Use a larger N or fewer/smaller moduli "
            "(allow_insecure=true is for tests only).")
    return logq
