"""Reading the repository's Markdown as GitHub renders it, for the docs tests (tests/docs/) and
tests/grafana/check_grafana.py: headings and their anchors, links, and pipe tables.

Not a Markdown parser: enough of GitHub Flavored Markdown for what this repository writes. Fenced
code blocks and inline code never hold links or headings; everything else is plain text, ATX
headings (`## Title`), inline links and images (`[text](target)`), reference definitions
(`[ref]: target`), HTML `href`/`src`/`id`/`name` attributes, and pipe tables.

Anchors follow GitHub's rules (github-slugger, which github.com uses): the heading's rendered text
(code spans keep their content, links their text, emphasis loses its markers) in lower case, every
character that is not a letter, a digit, a combining mark, a space, `-` or `_` removed, and each
space turned into `-`; a repeated slug gets `-1`, `-2`, ... in order of appearance.
"""
import re
import unicodedata

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)


def prose_lines(text):
    """The text's lines, with the lines of fenced code blocks (fences included) emptied, so line
    numbers stay right and nothing inside a code block counts as a heading or a link."""
    out, fence = [], None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
            out.append("")
        else:
            out.append(line)
    return out


def _without_code_spans(line):
    """The line with each inline code span blanked to spaces (same length), so a link written
    inside backticks is not taken for one."""
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def rendered_text(inline):
    """The plain text GitHub shows for an inline Markdown fragment (a heading's text)."""
    spans = []

    def keep(m):
        spans.append(m.group(2).strip() if m.group(2).strip() else m.group(2))
        return f"\0{len(spans) - 1}\0"

    s = _CODE_SPAN.sub(keep, inline)
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", s)       # links and images: their text
    s = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", s)      # reference links
    s = re.sub(r"<[^>]+>", "", s)                          # inline HTML tags
    s = re.sub(r"\*+", "", s)                              # * and ** emphasis
    # _ and __ emphasis only at word boundaries (snake_case words keep their underscores).
    s = re.sub(r"(?<![\w])_{1,2}(?=\S)(.+?)(?<=\S)_{1,2}(?![\w])", r"\1", s)
    s = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", s)           # backslash escapes
    return re.sub(r"\0(\d+)\0", lambda m: spans[int(m.group(1))], s)


def slug(heading_text):
    """github-slugger's slug of a heading's rendered text (before de-duplication)."""
    out = []
    for ch in heading_text.strip().lower():
        if ch in " -_" or unicodedata.category(ch)[0] in "LNM":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def headings(text):
    """[(level, rendered text, line number)] of the ATX headings outside code blocks."""
    found = []
    for number, line in enumerate(prose_lines(text), 1):
        m = _ATX.match(line)
        if m:
            found.append((len(m.group(1)), rendered_text(m.group(2) or "").strip(), number))
    return found


def anchors(text):
    """{anchor: heading text} for every heading, numbered as GitHub numbers repeats, plus the ids
    and names of HTML elements (`<a id="x">`)."""
    seen, out = {}, {}
    for _, heading, _ in headings(text):
        base = slug(heading)
        anchor, n = base, seen.get(base, 0)
        while anchor in out:
            n += 1
            anchor = f"{base}-{n}"
        seen[base] = n
        out[anchor] = heading
    for line in prose_lines(text):
        for m in re.finditer(r"<[a-zA-Z][^>]*\b(?:id|name)\s*=\s*\"([^\"]+)\"", line):
            out.setdefault(m.group(1), f"<{m.group(1)}>")
    return out


_INLINE_LINK = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_LINK = re.compile(r"\b(?:href|src)\s*=\s*\"([^\"]+)\"")


def links(text):
    """[(line number, target)] of every link and image target outside code."""
    found = []
    for number, line in enumerate(prose_lines(text), 1):
        line = _without_code_spans(line)
        targets = [m.group(1) for m in _INLINE_LINK.finditer(line)]
        m = _REFERENCE.match(line)
        if m:
            targets.append(m.group(1))
        targets += [m.group(1) for m in _HTML_LINK.finditer(line)]
        for target in targets:
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            found.append((number, target))
    return found


def _cells(line):
    """A table row's cells, without the optional outer pipes. As in GitHub's tables, every `|`
    not escaped as `\\|` ends a cell, inside a code span too."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


class Table:
    """A pipe table: `heading` is the text of the last heading above it, `header` its column
    names in lower case, `rows` lists of cells (raw Markdown), `lines` each row's line number."""

    def __init__(self, heading, header, line):
        self.heading, self.header, self.line = heading, header, line
        self.rows, self.lines = [], []

    def column(self, name):
        return self.header.index(name) if name in self.header else None


def tables(text):
    """Every pipe table outside code blocks, in order."""
    lines = prose_lines(text)
    found, heading, i = [], "", 0
    while i < len(lines):
        m = _ATX.match(lines[i])
        if m:
            heading = (m.group(2) or "").strip()
        if "|" in lines[i] and i + 1 < len(lines) and _DELIMITER.match(lines[i + 1]) \
                and "-" in lines[i + 1]:
            table = Table(heading, [c.lower() for c in _cells(lines[i])], i + 1)
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                table.rows.append(_cells(lines[i]))
                table.lines.append(i + 1)
                i += 1
            found.append(table)
            continue
        i += 1
    return found


def code_words(cell):
    """The contents of the inline code spans in a table cell: "`a`, `b`" -> ["a", "b"]."""
    return [m.group(2).strip() for m in _CODE_SPAN.finditer(cell)]
