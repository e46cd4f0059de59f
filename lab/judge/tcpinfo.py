"""tcp_info of a socket, and the names a ``%{ }%`` block reads (lab/judge/code.py runs the blocks).

The struct layout is Linux's ``struct tcp_info`` (include/uapi/linux/tcp.h);
``SK_MEMINFO_*`` names read the socket's SO_MEMINFO, as in packetdrill.
"""

from __future__ import annotations

import socket
import struct

from lab.tcp.uapi import CONSTANTS as UAPI

_U8 = ("state", "ca_state", "retransmits", "probes", "backoff", "options")
_U32_A = ("rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets",
          "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv", "pmtu", "rcv_ssthresh",
          "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss", "reordering", "rcv_rtt", "rcv_space",
          "total_retrans")
_U64_A = ("pacing_rate", "max_pacing_rate", "bytes_acked", "bytes_received")
_U32_B = ("segs_out", "segs_in", "notsent_bytes", "min_rtt", "data_segs_in", "data_segs_out")
_U64_B = ("delivery_rate", "busy_time", "rwnd_limited", "sndbuf_limited")
_U32_C = ("delivered", "delivered_ce")
_U64_C = ("bytes_sent", "bytes_retrans")
_U32_D = ("dsack_dups", "reord_seen", "rcv_ooopack", "snd_wnd", "rcv_wnd", "rehash")
_U16_E = ("total_rto", "total_rto_recoveries")
_U32_E = ("total_rto_time",)
# AccECN (Linux 6.18, 280 bytes in all), then one u32 of bit fields: ecn_mode:2, accecn_opt_seen:2,
# accecn_fail_mode:4, options2:24 (include/uapi/linux/tcp.h; the first field in the low bits on x86)
_U32_F = ("received_ce", "delivered_e1_bytes", "delivered_e0_bytes", "delivered_ce_bytes", "received_e1_bytes",
          "received_e0_bytes", "received_ce_bytes", "_ecn_bits")

_LAYOUT = [("6B", _U8), ("2B", ("_wscale", "_bits")), ("24I", _U32_A), ("4Q", _U64_A), ("6I", _U32_B),
           ("4Q", _U64_B), ("2I", _U32_C), ("2Q", _U64_C), ("6I", _U32_D), ("2H", _U16_E), ("I", _U32_E),
           ("8I", _U32_F)]
_FORMAT = "=" + "".join(fmt for fmt, _ in _LAYOUT)
_NAMES = [name for _, names in _LAYOUT for name in names]
_BIT_FIELDS = ("snd_wscale", "rcv_wscale", "delivery_rate_app_limited", "fastopen_client_fail", "ecn_mode",
               "accecn_opt_seen", "accecn_fail_mode", "options2")
FIELDS = frozenset(f"tcpi_{name}" for name in (*_NAMES, *_BIT_FIELDS) if not name.startswith("_"))

# The names a %{ }% block may use besides tcpi_* and SK_MEMINFO_*: the kernel's constants (lab/tcp/uapi.py,
# TCP states and TCP_CA_* among them), and two tcpi_options bits newer than the headers it was generated from.
CONSTANTS = {**UAPI, "TCPI_OPT_USEC_TS": 64, "TCPI_OPT_TFO_CHILD": 128}


MEMINFO = ("SK_MEMINFO_RMEM_ALLOC", "SK_MEMINFO_RCVBUF", "SK_MEMINFO_WMEM_ALLOC", "SK_MEMINFO_SNDBUF",
           "SK_MEMINFO_FWD_ALLOC", "SK_MEMINFO_WMEM_QUEUED", "SK_MEMINFO_OPTMEM", "SK_MEMINFO_BACKLOG",
           "SK_MEMINFO_DROPS")  # the u32 array SO_MEMINFO fills, in this order (linux/sock_diag.h)
SO_MEMINFO = 55


def tcp_info(sock: socket.socket) -> dict[str, int]:
    """The names a %{ }% block reads: tcp_info as ``tcpi_*`` (fields this kernel lacks read as 0), and
    SO_MEMINFO as ``SK_MEMINFO_*``."""
    return {**_tcp_info(sock), **meminfo(sock)}


def meminfo(sock: socket.socket) -> dict[str, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * len(MEMINFO)).ljust(4 * len(MEMINFO), b"\0")
    return dict(zip(MEMINFO, struct.unpack(f"={len(MEMINFO)}I", raw), strict=True))


def _tcp_info(sock: socket.socket) -> dict[str, int]:
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, struct.calcsize(_FORMAT))
    raw = raw.ljust(struct.calcsize(_FORMAT), b"\0")
    values = dict(zip(_NAMES, struct.unpack(_FORMAT, raw), strict=True))
    wscale = values.pop("_wscale")
    bits = values.pop("_bits")
    values["snd_wscale"] = wscale & 0x0F
    values["rcv_wscale"] = wscale >> 4
    values["delivery_rate_app_limited"] = bits & 1
    values["fastopen_client_fail"] = (bits >> 1) & 3
    ecn_bits = values.pop("_ecn_bits")
    values["ecn_mode"] = ecn_bits & 3
    values["accecn_opt_seen"] = (ecn_bits >> 2) & 3
    values["accecn_fail_mode"] = (ecn_bits >> 4) & 0xF
    values["options2"] = ecn_bits >> 8
    return {f"tcpi_{name}": value for name, value in values.items()}
