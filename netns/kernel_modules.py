"""The kernel modules the lab's link rules (netns/loss.py) use, where the kernel builds them as modules.

Debian's kernels do: tables, the incremental counter, nflog, and the queue a
delay holds segments in (native, and through nft_compat's xt_NFQUEUE). A
module of its own, without pyroute2, so that what only names them (the
guest's modprobe line, a run's error message) does not load nf_tables' client.
"""

LOSS_MODULES = ("nf_tables", "nft_numgen", "nft_log", "nfnetlink_log", "nft_queue", "nfnetlink_queue", "nft_compat",
                "xt_NFQUEUE")
