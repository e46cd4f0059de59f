"""tools/kernel_refs: the definition finder must tell a definition from a prototype, a call and a longer name."""

from tools.kernel_refs import defines, missing_in

SOURCE = """\
static int tcp_close_state(struct sock *sk);

void tcp_close(struct sock *sk, long timeout)
{
	lock_sock(sk);
	if (tcp_close_state(sk))
		tcp_send_fin(sk);
}

static int
tcp_close_state(struct sock *sk)
{
	return 0;
}

void tcp_set_keepalive(struct sock *sk, int val)
	__releases(sk->sk_lock)
{
}
"""


def test_a_definition_with_its_return_type_on_the_line_before_is_found():
    assert defines(SOURCE, "tcp_close_state")


def test_a_definition_after_an_annotation_is_found():
    assert defines(SOURCE, "tcp_set_keepalive")


def test_a_call_or_a_prototype_is_not_a_definition():
    assert not defines(SOURCE, "tcp_send_fin")
    assert not defines("static int tcp_close_state(struct sock *sk);\n", "tcp_close_state")


def test_a_name_is_not_found_inside_a_longer_one():
    assert not defines("void __tcp_close(struct sock *sk)\n{\n}\n", "tcp_close")
    assert defines("void __tcp_close(struct sock *sk)\n{\n}\n", "__tcp_close")


def test_a_reference_to_the_wrong_file_is_missing():
    sources = {"net/ipv4/tcp.c": SOURCE, "net/ipv4/tcp_output.c": ""}
    assert missing_in(sources, {"net/ipv4/tcp.c:tcp_close", "net/ipv4/tcp_output.c:tcp_close",
                                "net/ipv4/tcp_input.c:tcp_close"}) == [
        "net/ipv4/tcp_input.c:tcp_close", "net/ipv4/tcp_output.c:tcp_close"]
