"""Captures: deterministic fixtures, offline verification and diffs of pcap files.

Everything here works on files alone, with no privileges and no namespaces,
except fixtures.py (``tcplab capture regen``), which runs the exercises
against the kernel.
"""
