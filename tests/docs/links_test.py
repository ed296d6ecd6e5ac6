#!/usr/bin/python3
"""Relative links in the repository's Markdown files resolve (ctest label `docs`).

    links_test.py SOURCE_DIR

Every Markdown file under SOURCE_DIR (not in build trees, hidden folders, test data (tests/data)
or fuzz corpora (`corpus` folders)) is read as GitHub renders it (tests/support/markdown.py).
Each link or image whose target has no scheme (`https:`, `mailto:`) must name an existing file or
folder, relative to the linking file (or to the repository root when it starts with `/`), and
its `#anchor`, if any, must be a heading or an HTML id of the target Markdown file (of the file
itself for a bare `#anchor`), by GitHub's anchor rules. Anchors into other kinds of files
(`#L12` of a source file) are not checked.
"""
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import markdown  # noqa: E402  (tests/support/markdown.py)

EXCLUDED = ("tests/data",)


def markdown_files(source):
    for root, dirs, files in os.walk(source):
        rel = os.path.relpath(root, source)
        # Build trees (CMakeCache.txt), hidden folders, test data and corpora are not ours to
        # render.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "corpus"
                         and not os.path.exists(os.path.join(root, d, "CMakeCache.txt"))
                         and os.path.normpath(os.path.join(rel, d)) not in EXCLUDED)
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(root, name)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    source = os.path.realpath(sys.argv[1])
    anchors_of, failures, files, checked = {}, [], 0, 0

    def anchors(path):
        if path not in anchors_of:
            with open(path, encoding="utf-8") as f:
                anchors_of[path] = markdown.anchors(f.read())
        return anchors_of[path]

    for path in markdown_files(source):
        files += 1
        rel = os.path.relpath(path, source)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for line, target in markdown.links(text):
            parsed = urllib.parse.urlsplit(target)
            if parsed.scheme or parsed.netloc:
                continue
            checked += 1
            where = f"{rel}:{line}: {target}"
            file_part = urllib.parse.unquote(parsed.path)
            if not file_part:
                resolved = path
            elif file_part.startswith("/"):
                resolved = os.path.join(source, file_part.lstrip("/"))
            else:
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if not os.path.realpath(resolved).startswith(source + os.sep):
                failures.append(f"{where}: points outside the repository")
                continue
            if not os.path.exists(resolved):
                failures.append(f"{where}: {os.path.relpath(resolved, source)} does not exist")
                continue
            fragment = urllib.parse.unquote(parsed.fragment)
            if fragment and resolved.endswith(".md") and os.path.isfile(resolved):
                if fragment not in anchors(resolved):
                    failures.append(f"{where}: {os.path.relpath(resolved, source)} has no "
                                    f"heading with the anchor #{fragment}")

    for message in failures:
        print("FAIL:", message, file=sys.stderr)
    if failures:
        return 1
    if not files or not checked:
        print(f"FAIL: found {files} Markdown files and {checked} relative links under {source}",
              file=sys.stderr)
        return 1
    print(f"links: {checked} relative links in {files} Markdown files resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
