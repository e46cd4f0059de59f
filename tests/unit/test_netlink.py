"""Netlink as the run's requests pack it (netns/netlink.py, netns/rtnl.py) and a sock_diag answer as the
observer reads it: layouts checked against the kernel's headers, byte by byte, without a kernel."""

from __future__ import annotations

import socket
import struct

import pytest

from netns.netlink import (
    HEADER,
    NLA_F_NESTED,
    NLMSG_ERROR,
    attribute,
    attributes,
    error_of,
    message,
    messages,
    nested,
)
from netns.rtnl import IFADDRMSG, IFINFOMSG, NDMSG, RTMSG, family_of


def test_the_fixed_headers_have_the_kernels_sizes():
    # linux/netlink.h nlmsghdr 16; rtnetlink.h ifinfomsg 16, ifaddrmsg 8, ndmsg 12, rtmsg 12
    assert (HEADER.size, IFINFOMSG.size, IFADDRMSG.size, NDMSG.size, RTMSG.size) == (16, 16, 8, 12, 12)


def test_an_attribute_is_padded_to_four_bytes_and_read_back():
    packed = attribute(3, b"tun0\0")  # IFLA_IFNAME: 4 header bytes + 5, padded to 12
    assert packed == struct.pack("=HH", 9, 3) + b"tun0\0" + b"\0\0\0"
    assert attributes(packed + attribute(4, struct.pack("=I", 1500))) == {3: b"tun0\0", 4: struct.pack("=I", 1500)}


def test_a_nested_attribute_carries_the_flag_and_its_children():
    packed = nested(18, attribute(1, b"veth"))
    assert struct.unpack_from("=HH", packed) == (4 + 8, 18 | NLA_F_NESTED)
    outer = attributes(packed)
    assert list(outer) == [18] and attributes(outer[18]) == {1: b"veth"}


def test_an_attribute_with_a_length_shorter_than_its_header_ends_the_reading():
    assert attributes(struct.pack("=HH", 2, 7) + attribute(1, b"x")) == {}


def test_one_datagram_holds_several_messages_each_aligned():
    first, second = message(16, 0, b"abcde", sequence=7), message(3, 0, b"", sequence=8)
    data = first + b"\0" * 3 + second
    assert [(kind, sequence, len(whole)) for kind, sequence, whole in messages(data)] == [(16, 7, 21), (3, 8, 16)]


def test_an_error_message_carries_the_negated_errno():
    refused = message(NLMSG_ERROR, 0, struct.pack("=i", -17) + bytes(16))
    acknowledged = message(NLMSG_ERROR, 0, struct.pack("=i", 0) + bytes(16))
    assert (error_of(refused), error_of(acknowledged)) == (17, 0)


@pytest.mark.parametrize(("address", "family"), [("198.18.0.2", socket.AF_INET), ("2001:db8::2", socket.AF_INET6)])
def test_an_address_names_its_family(address, family):
    assert family_of(address) == family


def test_a_sock_diag_answer_is_read_with_ports_in_network_order():
    from lab.live.observer import INET_DIAG_MSG, _info

    body = INET_DIAG_MSG.pack(socket.AF_INET6, 1, 3, 0, struct.pack("!H", 8080), struct.pack("!H", 51000),
                              socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                              socket.inet_pton(socket.AF_INET6, "2001:db8::2"), 0, 0, 59000, 0, 0, 0, 0)
    info = _info(message(20, 0, body))
    assert (info.state, info.timer, info.expires_ms) == ("ESTABLISHED", "time_wait", 59000)
    assert (info.local, info.remote) == (("2001:db8::1", 8080), ("2001:db8::2", 51000))
    wrong_order = _info(message(20, 0, body[:4] + body[6:8] + body[4:6] + body[8:]))
    assert wrong_order.local[1] == 51000  # the check can fail: swapped ports read swapped


def test_an_ipv4_answer_reads_the_first_four_address_bytes():
    from lab.live.observer import INET_DIAG_MSG, _info

    body = INET_DIAG_MSG.pack(socket.AF_INET, 10, 0, 0, struct.pack("!H", 8080), bytes(2),
                              socket.inet_aton("198.18.0.1").ljust(16, b"\0"), bytes(16), 0, 0, 0, 0, 0, 0, 0)
    info = _info(message(20, 0, body))
    assert (info.state, info.local, info.remote) == ("LISTEN", ("198.18.0.1", 8080), ("0.0.0.0", 0))
