"""Other kernel releases: a Debian kernel image fetched by release, booted with virtme-ng, tcplab run inside.

A verdict holds for the kernel that gave it. To check a behaviour on another
release, tcplab boots that release's kernel with virtme-ng (the kernel
community's own tool: qemu over the host's file system, so the guest runs this
very tcplab) and runs a tcplab command there; the guest's JSON names its
kernel, and ``tcplab claims --from`` merges several (lab/course/claims.py).

Debian's packages give the image and its modules without installing
anything: ``apt-get download`` and ``dpkg-deb -x`` into a cache folder. The
guest finds its modules under /lib/modules/RELEASE of the host's file system,
so the boot runs in a mount namespace of its own with a tmpfs on /lib/modules
and the cached modules bind-mounted in it; the host's /lib/modules is not
written (only created, empty, where it does not exist). Without working KVM the guest is emulated:
slower, so its runs use ``--slow`` (content judged in full, timing reported).
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lab.errors import BadInput, EnvironmentProblem
from netns.kernel_modules import LOSS_MODULES

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
NEEDED_TOOLS = {"vng": "pip install virtme-ng (or `pip install tcplab[kernels]`)",
                "qemu-system-x86_64": "apt-get install qemu-system-x86", "busybox": "apt-get install busybox-static",
                "depmod": "apt-get install kmod", "apt-get": "a Debian or Ubuntu host"}


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tcplab" / "kernels"


@dataclass(frozen=True)
class Kernel:
    """A kernel image and the modules built with it."""

    release: str  # as `uname -r` will say it: 6.12.118+deb12-amd64
    vmlinuz: Path
    modules: Path  # the folder named ``release`` that /lib/modules/RELEASE must be in the guest


def package_pattern(release: str) -> re.Pattern:
    """Debian's generic amd64 image packages of ``release`` (6.12, 6.1, 6.12.118): not -cloud, -rt or -dbg."""
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", release):
        raise BadInput(f"kernel release {release!r}: give it as 6.12 or 6.12.118")
    return re.compile(rf"linux-image-{re.escape(release)}(\.\d+)*([-+][0-9a-z.+~]+)*?-amd64")


def newest_package(release: str, names: list[str]) -> str:
    """The newest generic image package of ``release`` among apt's package names (Debian version order)."""
    pattern = package_pattern(release)
    found = [name for name in names if pattern.fullmatch(name) and not re.search(r"-(cloud|rt)-amd64$", name)
             and name != f"linux-image-{release}-amd64"]  # the meta package, which holds no kernel
    if not found:
        raise BadInput(f"no Debian kernel image for {release} in this host's package lists; "
                       "`apt-cache search linux-image` shows the releases it offers")
    return max(found, key=lambda name: [(0, int(part), "") if part.isdigit() else (1, 0, part)
                                        for part in re.split(r"[.+-]", name.removeprefix("linux-image-"))])


def _path() -> str:
    """PATH with this Python's own bin folder first: virtme-ng installed beside tcplab (a venv) is found, and
    finds its own virtme-run."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])


def missing_tools() -> list[str]:
    """What the host lacks to boot another kernel, each with how to get it."""
    return [f"{tool} ({how})" for tool, how in NEEDED_TOOLS.items() if shutil.which(tool, path=_path()) is None]


def fetched() -> list[Kernel]:
    """The kernels already in the cache."""
    kernels = []
    for folder in sorted(path for path in cache_folder().glob("*") if path.is_dir()):
        for vmlinuz in (folder / "boot").glob("vmlinuz-*"):
            release = vmlinuz.name.removeprefix("vmlinuz-")
            modules = folder / "lib" / "modules" / release
            if modules.is_dir():
                kernels.append(Kernel(release, vmlinuz, modules))
    return kernels


def fetch(release: str) -> Kernel:
    """The newest Debian image of ``release``, downloaded and unpacked into the cache (once)."""
    names = subprocess.run(["apt-cache", "pkgnames", "linux-image-"], capture_output=True, text=True,
                           check=True).stdout.split()
    package = newest_package(release, names)
    folder = cache_folder() / package
    if not (folder / "boot").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["apt-get", "download", package], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise EnvironmentProblem(f"apt-get download {package} failed: {done.stderr.strip().splitlines()[-1]}")
        deb = next(folder.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder)], check=True)
        deb.unlink()
    kernel = next((kernel for kernel in fetched() if kernel.vmlinuz.is_relative_to(folder)), None)
    if kernel is None:
        raise EnvironmentProblem(f"{package} unpacked into {folder} holds no boot/vmlinuz-* with its modules")
    subprocess.run(["depmod", "-b", str(folder), kernel.release], check=True)
    return kernel


def resolve(name: str) -> Kernel:
    """A fetched kernel by release (6.12 matches 6.12.118+deb12-amd64) or by its vmlinuz path."""
    path = Path(name)
    if path.is_file():
        release = path.name.removeprefix("vmlinuz-")
        modules = path.parent.parent / "lib" / "modules" / release
        if not modules.is_dir():
            raise BadInput(f"{name}: no modules beside it ({modules}); put the kernel's modules there")
        return Kernel(release, path, modules)
    matches = [kernel for kernel in fetched() if kernel.release == name or kernel.release.startswith(name + ".")
               or kernel.release.startswith(name + "+") or kernel.release.startswith(name + "-")]
    if not matches:
        raise BadInput(f"kernel {name!r} is not fetched; `tcplab kernels fetch {name}` first")
    return max(matches, key=lambda kernel: kernel.release)


def guest_command(kernel: Kernel, tcplab_args: list[str], kvm: bool, cpus: int, memory: str) -> list[str]:
    """The vng command that boots ``kernel`` and runs ``tcplab ARGS`` there, from this folder, with the same
    tcplab; --slow is added where the guest is emulated."""
    args = list(tcplab_args)
    if not kvm and args and args[0] in ("run", "claims", "selftests") and "--slow" not in args:
        args.insert(1, "--slow")
    # The netfilter modules the lossy-link exercises need, loaded in the guest before it runs anything.
    inside = (f"modprobe -a {' '.join(LOSS_MODULES)} 2>/dev/null; cd {shlex.quote(os.getcwd())} && "
              f"{shlex.quote(str(Path(sys.executable).with_name('tcplab')))} {shlex.join(args)}")
    return ["vng", "-r", str(kernel.vmlinuz), *([] if kvm else ["--disable-kvm"]), "--cpus", str(cpus),
            "--memory", memory, "--exec", inside]


def boot(kernel: Kernel, command: list[str]) -> int:
    """Run ``command`` (guest_command's) with the kernel's modules at /lib/modules/RELEASE in a mount namespace of
    its own; its output goes where this process's goes. Returns its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), "a private mount namespace")
            os.makedirs("/lib/modules", exist_ok=True)  # the one thing left on the host: an empty mount point
            if libc.mount(b"tmpfs", b"/lib/modules", b"tmpfs", 0, b"mode=0755") != 0:
                raise OSError(ctypes.get_errno(), "a tmpfs on /lib/modules")
            target = Path("/lib/modules") / kernel.release
            target.mkdir()
            if libc.mount(str(kernel.modules).encode(), str(target).encode(), None, MS_BIND, None) != 0:
                raise OSError(ctypes.get_errno(), f"bind-mounting the modules on {target}")
            os.environ["PATH"] = _path()
            os.execvp(command[0], command)
        except OSError as error:
            print(f"tcplab: cannot boot {kernel.release}: {error}", file=sys.stderr)
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
