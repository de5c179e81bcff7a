"""The messages a reader meets, in English and Chinese, from one catalogue.

The language is ``$D2LMINI_LANG`` (``en`` or ``zh``) when it is set; otherwise ``zh`` when the current
folder is named ``zh`` (the Chinese notebooks live in ``notebooks/zh/`` and their kernels start there);
otherwise ``en``.  :func:`msg` fills a template in that language::

    msg("restored_best", epoch=3)          # 'Restored the weights of epoch 3.'  or  '已恢复第 3 轮的权重。'

:func:`localize` rewrites every catalogue message found in a printed text into the other language, so a
tool can turn the committed English outputs of a notebook into what a Chinese run prints.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from functools import lru_cache
from pathlib import Path

LANG_ENV = "D2LMINI_LANG"
WIDTH = 79  # the book's page: printed lines stay within 79 columns
LANGUAGES = ("en", "zh")

#: key -> {"en": template, "zh": template}; fields as in ``str.format`` (``{lr:g}``, ``{best:.4f}``).
MESSAGES: dict[str, dict[str, str]] = {
    "banner_reader": {
        "en": "Reader mode: full data and epochs.",
        "zh": "阅读模式：完整的数据和训练轮数。",
    },
    "banner_smoke": {
        "en": "⚠ SMOKE MODE ON (D2LMINI_SMOKE=1): tiny data and few epochs, for CI. "
              "Numbers below are NOT the book's results; unset D2LMINI_SMOKE to run the real chapter.",
        "zh": "⚠ 冒烟测试模式已开启（D2LMINI_SMOKE=1）：数据极少、轮数很少，供 CI 使用。"
              "下面的数字不是本书的结果；取消 D2LMINI_SMOKE 即可运行完整的一章。",
    },
    "device": {"en": "Device: {device}", "zh": "设备：{device}"},
    "diverged": {
        "en": "Training stopped: the loss became {loss} at step {step} (epoch {epoch}). "
              "The learning rate (lr={lr:g}) is probably too high: try a smaller one.",
        "zh": "训练已停止：第 {step} 步（第 {epoch} 轮）的损失变成了 {loss}。"
              "学习率（lr={lr:g}）很可能太大了，请换一个更小的。",
    },
    "stopped_by_callback": {"en": "Training stopped by a callback.", "zh": "训练被一个回调停止。"},
    "early_stop": {
        "en": "Early stopping after epoch {epoch}: {monitor} has not improved for {patience} epochs "
              "(best {best:.4f} at epoch {best_epoch}).",
        "zh": "第 {epoch} 轮后提前停止：{monitor} 已连续 {patience} 轮没有改善"
              "（最好的是第 {best_epoch} 轮的 {best:.4f}）。",
    },
    "restored_best": {"en": "Restored the weights of epoch {epoch}.", "zh": "已恢复第 {epoch} 轮的权重。"},
    "dataset_unavailable": {
        "en": "Fashion-MNIST is not in {raw} and could not be downloaded ({error}).\n"
              "To get Fashion-MNIST, do one of:\n"
              "  * connect to the internet and run the cell again (torchvision downloads it), or\n"
              "  * on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist   "
              "(a local mirror d2lmini finds), or\n"
              "  * put the four *-ubyte(.gz) files in a folder and set D2LMINI_FASHION_MNIST_MIRROR to it.",
        "zh": "{raw} 中没有 Fashion-MNIST，也无法下载（{error}）。\n"
              "获取 Fashion-MNIST 的方法，任选其一：\n"
              "  * 连上互联网，再运行一次这个单元格（torchvision 会下载它）；\n"
              "  * 在 Debian/Ubuntu 上：sudo apt-get install dataset-fashion-mnist   "
              "（d2lmini 会找到这个本地镜像）；\n"
              "  * 把四个 *-ubyte(.gz) 文件放进一个文件夹，"
              "并把 D2LMINI_FASHION_MNIST_MIRROR 设为这个文件夹。",
    },
    "mirror_corrupt": {
        "en": "The mirror file {src} is truncated or corrupt ({error}). Reinstall it "
              "(sudo apt-get install --reinstall dataset-fashion-mnist) or point "
              "D2LMINI_FASHION_MNIST_MIRROR at a good copy.",
        "zh": "镜像文件 {src} 不完整或已损坏（{error}）。请重新安装它"
              "（sudo apt-get install --reinstall dataset-fashion-mnist），"
              "或把 D2LMINI_FASHION_MNIST_MIRROR 指向一份完好的副本。",
    },
    "dataset_file_corrupt": {
        "en": "{path} is not a complete '{name}' file ({size} bytes, expected {expected}). "
              "Delete it and run again; if it came from a mirror, reinstall the mirror "
              "(sudo apt-get install --reinstall dataset-fashion-mnist).",
        "zh": "{path} 不是完整的 '{name}' 文件（{size} 字节，应为 {expected} 字节）。"
              "请删除它后重新运行；如果它来自镜像，请重新安装镜像"
              "（sudo apt-get install --reinstall dataset-fashion-mnist）。",
    },
    "ckpt_missing": {
        "en": "No checkpoint at {path}: train the model first (or check the path).",
        "zh": "{path} 处没有检查点：请先训练模型（或检查路径）。",
    },
    "ckpt_unsafe": {
        "en": "{path} is not a weights-only checkpoint: it asks to unpickle arbitrary Python objects "
              "({why}). Loading it could run code, so d2lmini refuses. "
              "Only load checkpoints saved with save_checkpoint (state_dicts) from a source you trust.",
        "zh": "{path} 不是只含权重的检查点：它要求反序列化任意 Python 对象（{why}）。"
              "加载它可能会运行其中的代码，所以 d2lmini 拒绝加载。"
              "只加载用 save_checkpoint 保存（只含 state_dict）、来源可信的检查点。",
    },
    "ckpt_corrupt": {
        "en": "{path} is truncated or corrupt ({error}). Delete it and save it again.",
        "zh": "{path} 不完整或已损坏（{error}）。请删除它，再保存一次。",
    },
    "ckpt_no_model": {
        "en": "{path} holds no 'model' state_dict; it was not saved by save_checkpoint.",
        "zh": "{path} 中没有 'model' state_dict；它不是用 save_checkpoint 保存的。",
    },
    "ckpt_arch": {
        "en": "{path} was saved for a different architecture than {model}:",
        "zh": "{path} 保存时的模型结构与 {model} 不同：",
    },
    "ckpt_shapes": {"en": "  shapes differ: {items}", "zh": "  形状不同：{items}"},
    "ckpt_missing_keys": {"en": "  missing in the checkpoint: {items}", "zh": "  检查点中缺少：{items}"},
    "ckpt_unexpected_keys": {"en": "  not in the model: {items}", "zh": "  模型中没有：{items}"},
    "ckpt_arch_fix": {
        "en": "Build the same model that was saved (or train this one from scratch).",
        "zh": "请构建与保存时相同的模型（或者从头训练这个模型）。",
    },
}

#: Messages that always fill a whole line (matched only at the start of a line by :func:`localize`).
_WHOLE_LINE = {"device", "ckpt_shapes", "ckpt_missing_keys", "ckpt_unexpected_keys"}


def language() -> str:
    """``'en'`` or ``'zh'``: ``$D2LMINI_LANG`` if set, else ``'zh'`` in a folder named ``zh``, else
    ``'en'``."""
    env = os.environ.get(LANG_ENV, "").strip().lower()
    if env:
        return "zh" if env.startswith("zh") else "en"
    try:
        return "zh" if Path.cwd().name == "zh" else "en"
    except OSError:  # the working folder was deleted
        return "en"


def _columns(text: str) -> int:
    """Display width: a Chinese character takes two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, width: int = WIDTH) -> str:
    """Break every line of ``text`` to at most ``width`` display columns (Chinese characters count two),
    at spaces, or between two Chinese characters; a line's leading indent is kept on its continuations.
    A single word longer than ``width`` (a long path) stays whole."""
    out = []
    for line in text.split("\n"):
        if _columns(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        tokens = re.findall(r" +|[^ \u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+|.", line[len(indent):])
        cur = indent
        for tok in tokens:
            if _columns(cur + tok.rstrip()) > width and cur.strip():
                out.append(cur.rstrip())
                cur = indent + ("" if tok.isspace() else tok)
            else:
                cur += tok
        out.append(cur.rstrip())
    return "\n".join(out)


def msg(key: str, lang: str | None = None, **fields: object) -> str:
    """The catalogue message ``key`` in ``lang`` (default :func:`language`), its fields filled in.
    What d2lmini prints of it goes through :func:`wrap` first."""
    return MESSAGES[key][lang or language()].format(**fields)


def _parts(template: str) -> list[tuple[str, str | None]]:
    """``'a {x:g} b'`` -> ``[('a ', 'x'), (' b', None)]``: literal text, then the field after it."""
    return [(lit, name) for lit, name, _spec, _conv in string.Formatter().parse(template)]


@lru_cache(maxsize=4)
def _patterns(source: str) -> list[tuple[str, re.Pattern[str]]]:
    """One regex per message of language ``source``, longest literal text first, fields as named groups."""
    out = []
    for key, texts in MESSAGES.items():
        whole = key in _WHOLE_LINE
        parts, pattern, seen = _parts(texts[source]), "^" if whole else "", set()
        for i, (lit, name) in enumerate(parts):
            # a wrapped message may have a line break wherever its text has a space (or none, in Chinese)
            pattern += re.escape(lit) if whole else _loose(lit)
            if name is None:
                continue
            if name in seen:
                pattern += f"(?P={name})"
                continue
            seen.add(name)
            last = i == len(parts) - 1 or all(not p[0] for p in parts[i + 1:])
            inner = "[^\\n]" if whole or i == 0 and not lit else "(?:[^\\n]|\\n(?! *\\n))"
            pattern += f"(?P<{name}>{inner}*)" if last else f"(?P<{name}>{inner}*?)"
        literal = sum(len(lit) for lit, _ in parts)
        out.append((literal, key, re.compile(pattern, re.MULTILINE)))
    return [(key, rx) for _, key, rx in sorted(out, key=lambda t: -t[0])]


def _loose(literal: str) -> str:
    """A regex for ``literal`` that also matches it broken across lines by :func:`wrap`."""
    out = []
    for i, ch in enumerate(literal):
        if ch == " ":
            if not out or out[-1] != "\\s+":
                out.append("\\s+")
        else:
            out.append(re.escape(ch))
            nxt = literal[i + 1] if i + 1 < len(literal) else " "
            if nxt != " " and not (ch.isascii() and nxt.isascii()):
                out.append("\\n?")
    return "".join(out)


def _fill(template: str, values: dict[str, str]) -> str:
    """Fill ``template`` with already-formatted strings (format specs are ignored)."""
    return "".join(lit + (values[name] if name is not None else "") for lit, name in _parts(template))


def _rewrite(key: str, lang: str, values: dict[str, str], wrapped: bool) -> str:
    """The message ``key`` in ``lang`` from the field texts of a match; re-wrapped for ``lang`` if the
    match was wrapped."""
    if key in _WHOLE_LINE or not wrapped:
        return _fill(MESSAGES[key][lang], values)
    values = {k: re.sub(r"\s*\n\s*", " ", v).strip() for k, v in values.items()}
    return wrap(_fill(MESSAGES[key][lang], values))


def localize(text: str, lang: str = "zh") -> str:
    """Rewrite every catalogue message in ``text`` (printed in the other language) into ``lang``.

    ``localize("Restored the weights of epoch 3.")`` -> ``'已恢复第 3 轮的权重。'``; text that is not a
    catalogue message is left as it is, so a whole cell output can be passed.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    source = "en" if lang == "zh" else "zh"
    for key, rx in _patterns(source):
        breaks = MESSAGES[key][source].count("\n")  # a match with more line breaks was wrapped
        text = rx.sub(lambda m, key=key, n=breaks: _rewrite(key, lang, m.groupdict(),
                                                             m.group(0).count("\n") > n), text)
    return text
