"""The pcapng format's few facts tcplab needs, and a writer for its section header.

Scapy writes pcapng, but not the section header's options: the writer here
adds the section comment and the application name. Both the live runs'
recorder (lab/live/recorder.py: captures with the run's timeline) and the
fixtures use it; lab/capture/pcapfile.py reads what they write.
"""

from __future__ import annotations

import struct

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
OPT_COMMENT, OPT_SHB_USERAPPL = 1, 4
PCAPNG_INBOUND, PCAPNG_OUTBOUND = 1, 2  # the enhanced packet block's direction flag
TIMELINE_MARK = "tcplab-timeline "  # starts the section comment that holds a live run's timeline (JSON)
DROPPED = "dropped by the link"  # in a packet comment: a link lose line dropped it (offline checks read it back)


def pcapng_writer(path: str, section_comment: str, application: str):
    """A Scapy PcapNgWriter whose section header carries a comment and the application's name."""
    from scapy.utils import PcapNgWriter

    class Writer(PcapNgWriter):
        def _write_block_shb(self) -> None:
            body = self.endian_magic + struct.pack(self.endian + "HHq", 1, 0, -1)
            options = b""
            for code, text in ((OPT_COMMENT, section_comment), (OPT_SHB_USERAPPL, application)):
                if not text:
                    continue
                value = text.encode()
                options += struct.pack(self.endian + "HH", code, len(value)) + self._add_padding(value)
            options += struct.pack(self.endian + "HH", 0, 0)
            self.f.write(self.build_block(PCAPNG_MAGIC, body, options=options))

    return Writer(path)
