"""Whether a host is this machine's: the one rule the emulator's delivery and the verifier's certificate
URLs share."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host"]


def is_loopback_host(host: str, *, unspecified: bool = False) -> bool:
    """``localhost`` (and its subdomains), or a loopback address, IPv4-mapped ones included, without
    asking DNS; with ``unspecified``, also ``0.0.0.0``/``::`` (a server bound to every interface)."""
    # "localhost" and its subdomains are loopback by definition (RFC 6761).
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or (unspecified and address.is_unspecified)
