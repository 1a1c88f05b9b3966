"""Moved to :mod:`claw.engine.errors`; this name stays for the importers not yet updated."""

from claw.engine.errors import *  # noqa: F403
from claw.engine.errors import _connect_reason, _one_line, address_of  # noqa: F401
