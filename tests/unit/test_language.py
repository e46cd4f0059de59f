"""Languages: the default from the environment, the message table, and the CLI's --lang (no privileges)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from lab.cli import main
from lab.cli.output import table, width
from lab.views.i18n import LANGUAGES, MESSAGES, default_language, say


def test_default_language_follows_lc_all_then_lang():
    assert default_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_language({"LANG": "zh_TW"}) == "zh"
    assert default_language({"LANG": "en_US.UTF-8"}) == "en"
    assert default_language({}) == "en"
    assert default_language({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_language({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}) == "zh"


def test_every_message_exists_in_both_languages_with_the_same_fields():
    import string

    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        names = [{name for _, name, _, _ in string.Formatter().parse(texts[lang]) if name} for lang in LANGUAGES]
        assert names[0] == names[1], key
    assert say("summary", "zh", passed=3, failed=1) == "3 个通过，1 个失败"


def test_tables_align_chinese_by_terminal_columns():
    assert width("TIME_WAIT") == 9 and width("证实") == 4
    lines = table([["a", "b"], ["证实", "x"], ["refuted", "y"]])
    columns = [width(line[:line.rindex(cell)]) for line, cell in zip((lines[0], lines[2], lines[3]), "bxy")]
    assert columns == [9, 9, 9] and lines[1] == "-------  -"


def test_list_and_explain_speak_the_chosen_language():
    runner = CliRunner()
    chinese = runner.invoke(main, ["list", "--lang", "zh"])
    assert chinese.exit_code == 0, chinese.output
    assert "三次握手" in chinese.output and "文章说法" in chinese.output and "SYN_RECV" in chinese.output
    english = runner.invoke(main, ["explain", "time-wait-fin-timeout", "--lang", "en"])
    assert english.exit_code == 0, english.output
    assert "claim (001_f2be7db29f51b6a9.txt)" in english.output and "verdict on Linux: refuted." in english.output
    assert "tcp_fin_timeout" in english.output
    assert ("decided in the kernel (Linux 6.18): net/ipv4/tcp_input.c tcp_rcv_state_process(), net/ipv4/tcp_minisocks.c "
            "tcp_time_wait()" in english.output)
    by_env = runner.invoke(main, ["explain", "time-wait-fin-timeout"], env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    assert by_env.exit_code == 0 and "在 Linux 上的结论：证伪。" in by_env.output
    assert "TIME_WAIT" in by_env.output and "tcp_fin_timeout" in by_env.output  # kernel tokens stay as spelt
    assert "内核中决定此行为之处（Linux 6.18）：net/ipv4/tcp_input.c tcp_rcv_state_process()" in by_env.output
    standard = runner.invoke(main, ["explain", "time-wait", "--lang", "en"])
    assert standard.exit_code == 0 and "\nstandard: RFC 9293" in standard.output, standard.output
    bad = runner.invoke(main, ["list", "--lang", "fr"])
    assert bad.exit_code == 2


def test_every_exercise_explains_itself_in_both_languages():
    from lab.course.catalogue import exercises

    runner = CliRunner()
    for exercise in exercises():
        for language, words in (("en", "verdict on Linux:"), ("zh", "在 Linux 上的结论：")):
            result = runner.invoke(main, ["explain", exercise.name, "--lang", language])
            assert result.exit_code == 0, (exercise.name, language, result.output)
            assert exercise.title_in(language) in result.output and words in result.output
            assert exercise.explanation_in(language).strip().splitlines()[0] in result.output


# Code keeps its ASCII punctuation: `spans`, calls such as shutdown(SHUT_WR), segments such as 1:1(0),
# option lists <mss 1460,sackOK> and message fields {name}.
CODE = re.compile(r"`[^`]*`|\d+:\d+\(\d+\)|<[^<>]*>|\b[a-z_][a-z0-9_]*\((?:\)|[A-Za-z0-9_, .|]*\))|\{[a-z_ ]+\}")
ASCII_IN_PROSE = re.compile(r"[,;()]|(?<![A-Za-z0-9_]):|:(?![A-Za-z0-9_])")


def chinese_punctuation_problem(text: str) -> str:
    """The first ASCII , ; ( ) or prose colon in Chinese text outside code, with its surroundings; '' if none."""
    prose = CODE.sub(" ", text)
    found = ASCII_IN_PROSE.search(prose)
    return prose[max(0, found.start() - 12):found.end() + 12] if found else ""


def test_chinese_text_uses_chinese_punctuation_outside_code():
    """A Chinese reader reads ，：；（） in prose; the articles' quotes stay as the articles wrote them."""
    from lab.course.catalogue import exercises
    from lab.course.claims import claims

    texts = {f"i18n {key}": message["zh"] for key, message in MESSAGES.items()}
    texts |= {f"{claim.id} {field}": getattr(claim, field) for claim in claims()
              for field in ("finding_zh", "short_zh")}
    texts |= {f"{exercise.name} {field}": getattr(exercise, field) for exercise in exercises()
              for field in ("title_zh", "explanation_zh")}
    problems = {where: problem for where, text in texts.items() if (problem := chinese_punctuation_problem(text))}
    assert problems == {}


def test_the_punctuation_check_sees_ascii_in_prose_and_not_in_code():
    assert chinese_punctuation_problem("发送 100 字节(序号 1 到 100)之后") == "发送 100 字节(序号 1 到 100)之"
    assert chinese_punctuation_problem("之后,客户端") and chinese_punctuation_problem("结论:证伪")
    assert chinese_punctuation_problem("用 shutdown(SHUT_WR) 半关闭，. 1:1(0) ack 1，<mss 1460,sackOK>，"
                                       "`a.pkt:3`，sock:inet_sock_set_state，{fixture}") == ""
