"""Zone (multizone): `ingress.address` must be `host:port`.

Kuma reports the problem at the field `address` (not `ingress.address`); kuma-py keeps that.
"""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Violations
from kuma.model.validators.golang import AddrError, parse_url, split_host_port
from kuma.pb.kuma.system import v1alpha1 as system_pb

__all__ = ["validate_zone"]


def validate_zone(name: str, mesh: str, spec: system_pb.Zone) -> ValidationError | None:
    errs = Violations()
    address = spec.ingress.address if spec.ingress is not None else ""
    if not address:
        errs.add("address", "cannot be empty")
        return errs.error()
    try:
        host, port = split_host_port(address)
    except AddrError as e:
        try:
            is_url = parse_url(address).scheme != ""
        except ValueError:
            is_url = False
        if is_url:
            errs.add("address", "should not be URL. Expected format is hostname:port")
        else:
            errs.add("address", f"invalid address: {e}")
        return errs.error()
    if not host:
        errs.add("address", "host has to be explicitly specified")
    if not port:
        errs.add("address", "port has to be explicitly specified")
    return errs.error()
