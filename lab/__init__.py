"""tcplab: a packet-level TCP lab that checks the real Linux kernel."""

__version__ = "0.1.0"
