"""The words tcplab says to a learner, in English and Chinese: one table, chosen once per command.

Kernel tokens (flags, state names, sysctl names, errnos) are never
translated: they are what a learner will see in ss, tcpdump and the kernel's
documentation. Texts about exercises and claims live in the catalogue
(catalogue.toml, claims.toml) as fields per language; this table holds the
rest: labels, headings and verdict words, and the fonts that draw the
Chinese in pages and SVG drawings.
"""

from __future__ import annotations

import os

LANGUAGES = ("en", "zh")

# Fonts for Chinese text, first choice first: Noto Sans CJK / Source Han Sans (most Linux desktops), WenQuanYi
# Micro Hei (Debian's fonts-wqy-microhei, which `make` installs for the browser tests), PingFang (macOS), YaHei
# (Windows).
CHINESE_FONTS = ("'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', 'PingFang SC', "
                 "'Microsoft YaHei'")

MESSAGES: dict[str, dict[str, str]] = {
    # verdict words (claims.toml keeps the English word)
    "confirmed": {"en": "confirmed", "zh": "证实"},
    "refined": {"en": "refined", "zh": "细化"},
    "refuted": {"en": "refuted", "zh": "证伪"},
    "untestable": {"en": "untestable", "zh": "无法测试"},
    # run results
    "pass": {"en": "pass", "zh": "通过"},
    "fail": {"en": "FAIL", "zh": "失败"},
    "not run": {"en": "-", "zh": "-"},
    # list and explain
    "claim": {"en": "claim", "zh": "文章说法"},
    "claim line": {"en": "claim ({source}): {said}", "zh": "文章说法（{source}）：{said}"},
    "verdict line": {"en": "verdict on Linux: {word}. {finding}", "zh": "在 Linux 上的结论：{word}。{finding}"},
    "verdict": {"en": "verdict", "zh": "结论"},
    "kernel line": {"en": "decided in the kernel (Linux 6.18): {refs}", "zh": "内核中决定此行为之处（Linux 6.18）：{refs}"},
    "standard line": {"en": "standard: {refs}", "zh": "标准：{refs}"},
    "mode drive": {"en": "drive mode: the lab plays one endpoint against the kernel",
                   "zh": "驱动模式：实验端扮演一方，与内核对话"},
    "mode observe": {"en": "observe mode: two real endpoints, watched",
                     "zh": "观察模式：观察两个真实的端点"},
    "segment by segment": {"en": "segment by segment ({fixture}: the fixture's deterministic times, not measured; "
                                 "states as its state lines assert them; `tcplab explain NAME --run` measures a run):",
                           "zh": "逐个报文段（{fixture}：录制的抓包中固定的时间，并非实测；状态为脚本状态行所断言的状态；"
                                 "`tcplab explain NAME --run` 会实际运行并测量）："},
    "segment by segment, measured": {"en": "segment by segment, measured now (IPv4, {verdict}; each state at the "
                                           "moment the kernel changed it):",
                                     "zh": "逐个报文段，刚刚实测（IPv4，{verdict}；每个状态标在内核改变它的时刻）："},
    "every line matched": {"en": "every line matched", "zh": "每一行都匹配"},
    # ladders of a live run
    "states traced": {"en": "states: traced by the kernel (sock:inet_sock_set_state), each at its moment",
                      "zh": "状态：由内核跟踪点记录（sock:inet_sock_set_state），每个都在它发生的时刻"},
    "states sampled": {"en": "states: sampled with sock_diag (no tracefs here), each at or after its change",
                       "zh": "状态：用 sock_diag 采样（此处没有 tracefs），每个标在变化之时或之后"},
    "sysctls set": {"en": "sysctls set by the script: {sysctls}", "zh": "脚本设置的 sysctl：{sysctls}"},
    # the HTML page of a run (tcplab run --html)
    "page play": {"en": "Play", "zh": "播放"},
    "page back": {"en": "Back", "zh": "后退"},
    "page step": {"en": "Step", "zh": "单步"},
    "page all": {"en": "Show all", "zh": "显示全部"},
    "page script": {"en": "The script", "zh": "脚本"},
    "page run": {"en": "This run: {verdict} ({name}).", "zh": "本次运行：{verdict}（{name}）。"},
    "page capture": {"en": "The capture of this run: {link} (pcapng, each segment with its script line as a "
                           "comment; open it in Wireshark).",
                     "zh": "本次运行的抓包：{link}（pcapng，每个报文段都附有对应的脚本行注释；可用 Wireshark 打开）。"},
    "the script": {"en": "the {kind} (run it: tcplab run {name}):",
                   "zh": "{kind}（运行：tcplab run {name}）："},
    "script": {"en": "script", "zh": "脚本"},
    "experiment": {"en": "experiment", "zh": "实验"},
    "also tests": {"en": "also evidence for", "zh": "同时是以下说法的证据"},
    # the run summary
    "exercise": {"en": "exercise", "zh": "练习"},
    "summary": {"en": "{passed} passed, {failed} failed", "zh": "{passed} 个通过，{failed} 个失败"},
    "again uncrowded": {"en": "{count} made again uncrowded: the first try's failure was no verdict on the kernel "
                              "(the lab was late, or the timing was off in a crowded batch)",
                        "zh": "{count} 个已在不拥挤的条件下重跑：首次运行的失败不是对内核的判定"
                              "（实验端自身滞后，或在拥挤的批量运行中计时偏差）"},
    "made again": {"en": "made again: the first try's failure was no verdict on the kernel",
                   "zh": "重跑：首次运行的失败不是对内核的判定"},
    # claims documents
    "claims title": {"en": "Claims of the teaching articles, checked against the kernel",
                     "zh": "教学文章中的说法，逐条用内核检验"},
    "claims intro": {
        "en": ("Generated by `tcplab claims` on Linux {release}. Each row is one sentence of an article in "
               "`shared/seeds/` (quoted as written, in Chinese), what it claims, the verdict, and what the kernel "
               "did in the runs. Every fact of a finding names the script or experiment lines that assert it "
               "(`EXERCISE.pkt:LINE`); `tcplab claims` fails when any of them did not pass. Verdicts: "
               "**confirmed**; **refined** (true with conditions, or more precisely); **refuted**; "
               "**untestable** (the lab cannot run it; the finding says why)."),
        "zh": ("由 `tcplab claims` 在 Linux {release} 上生成。每一行是 `shared/seeds/` 中某篇文章的一句原话、"
               "它的意思、结论，以及内核在运行中的实际表现。结论后的说明中，每个事实都注明了断言它的脚本或实验行"
               "（`练习.pkt:行号`）；其中任何一行没有通过，`tcplab claims` 就会失败。结论：**证实**；"
               "**细化**（有条件地成立，或需要更精确的说法）；**证伪**；**无法测试**（实验环境无法运行，"
               "说明中给出原因）。"),
    },
    "counts": {"en": "{total} claims: {counts}.", "zh": "共 {total} 条说法：{counts}。"},
    "count": {"en": "{n} {word}", "zh": "{word} {n} 条"},
    "separator": {"en": ", ", "zh": "、"},
    "article": {"en": "article", "zh": "文章"},
    "claim heading": {"en": "Claim:", "zh": "说法："},
    "verdict heading": {"en": "Verdict: {word}.", "zh": "结论：{word}。"},
    "evidence heading": {"en": "Evidence (Linux {release}):", "zh": "证据（Linux {release}）："},
    "evidence": {"en": "evidence", "zh": "证据"},
    "not judged": {"en": "not judged", "zh": "未判定"},
    "releases heading": {"en": "On other kernel releases ({releases}): where the evidence differs",
                         "zh": "在其他内核版本（{releases}）上：证据不同之处"},
    "release change": {"en": "— changed in Linux {since}: {change}. {why}",
                       "zh": "—— Linux {since} 起改变：{change}。{why}"},
    "no evidence": {"en": "no run: see the finding", "zh": "没有运行：原因见结论后的说明"},
    "claims written": {"en": "wrote {paths}: {total} claims, {failing} with a line that did not pass",
                       "zh": "已写入 {paths}：{total} 条说法，{failing} 条有未通过的行"},
    "claims failed": {"en": "{claim}: {ref} ({where}) did not pass in IPv{family}",
                      "zh": "{claim}：{ref}（{where}）在 IPv{family} 中没有通过"},
}


def default_language(environ: dict[str, str] | None = None) -> str:
    """zh when LC_ALL (or else LANG) starts with zh, otherwise en."""
    environ = os.environ if environ is None else environ
    setting = environ.get("LC_ALL") or environ.get("LANG") or ""
    return "zh" if setting.lower().startswith("zh") else "en"


def say(key: str, language: str, **values: object) -> str:
    """The message ``key`` in ``language``, with ``values`` filled in."""
    return MESSAGES[key][language].format(**values)


def font_family(generic: str) -> str:
    """A CSS font-family for text that may be Chinese: ``generic`` keeps the Latin text's look, and each character
    it lacks comes from the first of CHINESE_FONTS the reader has, a Simplified Chinese face on every system rather
    than whatever the system falls back to. Where no Chinese font is installed at all, the characters draw as empty
    boxes whatever a page names: tests/test_html_page.py checks that they do not."""
    return f"{generic}, {CHINESE_FONTS}"
