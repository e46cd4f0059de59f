"""The ``tcplab`` command: a Click group with one module per command family.

Command modules are imported only when their command runs: pyroute2 and
Scapy are slow to import, and ``tcplab --help`` must stay fast. Errors the
user can act on leave as one line on stderr with the documented exit code.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading

import click

from lab import __version__
from lab.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, LabError

# name -> (module, attribute, one-line help shown by `tcplab --help`)
COMMANDS = {
    "capture": ("lab.cli.capture", "capture", "Regenerate the pcap fixtures; compare two captures."),
    "claims": ("lab.cli.course", "claims", "Run every claim's evidence; write docs/claims.{md,zh.md,json}."),
    "demo": ("lab.cli.demo", "demo", "Play a real handshake and close against the kernel, step by step."),
    "doctor": ("lab.cli.doctor", "doctor", "Check that this machine can run the lab, and how."),
    "explain": ("lab.cli.course", "explain", "Explain an exercise: the claim, the segments, the states."),
    "kernels": ("lab.cli.kernels", "kernels", "Fetch other kernel releases and run tcplab on them (virtme-ng)."),
    "list": ("lab.cli.course", "list_exercises", "List the exercises and the claims they test."),
    "run": ("lab.cli.run", "run", "Run exercises or packetdrill-dialect scripts against the real kernel."),
    "selftests": ("lab.cli.selftests", "selftests", "Run the kernel's packetdrill selftests as its ksft_runner.sh does."),
    "verify": ("lab.cli.verify", "verify", "Check captures against an exercise or script, offline (no privileges)."),
    "topo": ("lab.cli.topo", "topo", "Build, list, tear down and clean up lab topologies."),
}
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from netns.signals import Terminated, raise_on_interrupts

        raise_on_interrupts()
        try:
            return super().invoke(ctx)
        except LabError as error:
            click.echo(f"tcplab: {error}", err=True)
            sys.exit(error.exit_code)
        except (KeyboardInterrupt, Terminated) as signalled:
            sys.exit(_interrupted(signalled))
        except Exception as error:
            if isinstance(error.__cause__, (KeyboardInterrupt, Terminated)):  # raised inside a class's creation
                sys.exit(_interrupted(error.__cause__))
            explained = _environment_error(error)
            if explained is None:
                raise
            click.echo(f"tcplab: {explained[1]}", err=True)
            sys.exit(explained[0])


def _interrupted(signalled: BaseException) -> int:
    """Say that a signal ended the command (what it made is removed on the way out); its exit status."""
    interrupted = isinstance(signalled, KeyboardInterrupt)
    click.echo(f"tcplab: {'interrupted' if interrupted else 'terminated'}; everything the run made was removed",
               err=True)
    return EXIT_SIGINT if interrupted else EXIT_SIGTERM


def _environment_error(error: Exception) -> tuple[int, str] | None:
    """The exit code and line for an error of the namespaces or of netlink; None for any other.

    Only modules already imported can have raised: commands that never touched
    a namespace do not import pyroute2 to find out.
    """
    namespace, netlink = sys.modules.get("netns.namespace"), sys.modules.get("pyroute2.netlink.exceptions")
    topology, requests = sys.modules.get("netns.topology"), sys.modules.get("netns.netlink")
    if topology and isinstance(error, topology.LinkNotReady):
        return EXIT_ENVIRONMENT, str(error)
    if namespace and isinstance(error, namespace.ReadOnlySysctls):
        from lab.live.container import GRANTS

        return EXIT_ENVIRONMENT, f"{error.strerror}; grant it: {GRANTS['proc-sys']} (`tcplab doctor` checks it all)"
    if namespace and isinstance(error, namespace.SysctlError):  # a --sysctl the kernel does not have or refuses
        return EXIT_BAD_INPUT, str(error)
    if (namespace and isinstance(error, namespace.NamespaceError)) or isinstance(error, PermissionError):
        return EXIT_ENVIRONMENT, (f"{error.strerror or error}; run with sudo, or in a container with CAP_SYS_ADMIN "
                                  "and CAP_NET_ADMIN")
    refused = ((netlink and isinstance(error, netlink.NetlinkError) and error.args[-1])  # tc, nf_tables
               or (requests and isinstance(error, requests.NetlinkRefused) and error.strerror))  # links, addresses
    if refused:  # a link kind or feature this kernel lacks
        return EXIT_ENVIRONMENT, (f"the kernel refused a network change ({refused}); `tcplab doctor` "
                                  "checks what this machine supports")
    return None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tcplab")
def main() -> None:
    """tcplab: drive real TCP handshakes against the Linux kernel, in namespaces of its own.

    Run as root (sudo), or as a plain user where unprivileged user namespaces
    are allowed. Exit codes: 0 pass, 1 mismatch, 2 bad input, 3 environment,
    4 inconclusive (the lab itself was late).
    """


def _start_run_setup() -> None:
    """For ``tcplab run``, before Click and the command load (~50 ms): hold the process to its timelines' CPU
    and start making its trace instance, which waits ~60 ms on the kernel's grace periods, so that both are
    done when the first run needs them (lab/live/punctual.py, lab/live/tracepoints.py say why). Where the
    runs go to a pool of workers, it gives the CPUs back and the instance goes unused."""
    from lab.live.punctual import keep_to_timeline_cpu
    from lab.live.tracepoints import prepare_in_background

    keep_to_timeline_cpu()
    prepare_in_background()


def entry() -> None:
    """The ``tcplab`` console script: ``main``, then an exit without the interpreter's teardown.

    Python's own exit frees every module and object one by one before the
    process ends: ~40 ms after a run, which has imported some 450 modules,
    longer than its topology takes to build. Nothing of that is needed. So
    once ``main`` is done, the exit does what the teardown would have done
    that matters (waits for the threads still closing something, runs the
    atexit handlers that remove what the run made, flushes the output) and
    ends the process with ``os._exit``. An unexpected exception still leaves
    the normal way, with its traceback.
    """
    from netns.signals import Terminated, raise_on_interrupts

    try:
        if sys.argv[1:2] == ["run"] and not {"-h", "--help"} & set(sys.argv):
            raise_on_interrupts()  # first: from now on a signal unwinds, and what the setup made is removed
            _start_run_setup()
        main()
    except SystemExit as done:
        code = done.code
    except (KeyboardInterrupt, Terminated) as signalled:  # before the command's own handling began
        code = _interrupted(signalled)
    else:
        code = 0
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the handlers the interpreter's own exit would run
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # sys.exit("message"): printed, exit status 1, as Python does
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (| head): nothing more to say
            stream.flush()
    os._exit(code or 0)
