"""Counters read from /proc/net/snmp and /proc/net/netstat (lab/live/observer.py ``counter``): the value under
its name in its group's two lines, not a neighbour's, nor another group's."""

from lab.live.observer import counter

SNMP = (b"Udp: InDatagrams NoPorts InErrors\nUdp: 7 8 9\n"
        b"Tcp: RtoAlgorithm RtoMin ActiveOpens InSegs OutSegs\nTcp: 1 200 3 41 42\n")


def test_a_counter_is_read_by_its_group_and_name():
    assert counter(SNMP, "Tcp", "InSegs") == 41
    assert counter(SNMP, "Tcp", "OutSegs") == 42
    assert counter(SNMP, "Udp", "InErrors") == 9
