"""Every example in README.md and docs/*.md runs against the real server.

How a Markdown file is tested (one test per file):

- ```` ```python ```` blocks run in order in one namespace per file (later blocks see the
  names earlier ones defined), with the working directory a fresh temporary directory that
  holds a copy of ``examples/workflows/`` (so ``examples/workflows/blur.json`` resolves and
  ``out/`` paths land in the temporary directory).
- ```` ```console ```` / ```` ```bash ```` / ```` ```shell ```` blocks: each line that starts
  with ``$ ivk`` (in bash/shell blocks also a bare ``ivk ...`` line; continued with a
  trailing backslash) runs through the real ``ivk`` entry
  point (``python -m invokeai_py_client.cli``) in that directory with ``INVOKEAI_URL`` set to
  the test server; it must exit 0, or the code a trailing ``# exit code N`` comment states.
  When the output shown under a command holds ``ivk: error: ...`` lines, the command must
  fail and print exactly those lines on stderr. Other lines (output listings, other
  commands) are not run.
- ``http://127.0.0.1:9090`` anywhere in a block is replaced by the test server's URL.
- A block right after an ``<!-- docs-test: skip -->`` comment is not run;
  ```` ```text ```` blocks are never run, nor is ``ivk serve`` (it runs until Ctrl-C).
- README.md's ```` ```bash ```` block of ``python3 dev.py ...`` set-up commands is not run
  (they are not ``ivk`` lines): they install the environment and run this very suite.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer

REPO = Path(__file__).resolve().parents[1]
DOC_URL = "http://127.0.0.1:9090"
SKIP_MARK = "<!-- docs-test: skip -->"
SHELL_LANGS = {"console", "bash", "shell", "sh"}
COMMAND_TIMEOUT = 120.0

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+)(?P<lang>[\w+-]*)[^\n]*$")
_EXIT = re.compile(r"#\s*exit(?:\s+code)?\s*:?\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """A fenced block of a Markdown file."""

    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: bool


def markdown_files() -> list[Path]:
    """README.md and every top-level page of docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def extract_blocks(text: str) -> list[Block]:
    """The fenced code blocks of ``text``, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    skip_next = False
    while i < len(lines):
        line = lines[i]
        if line.strip() == SKIP_MARK:
            skip_next = True
            i += 1
            continue
        m = _FENCE.match(line)
        if not m:
            if line.strip():
                skip_next = False
            i += 1
            continue
        fence, lang, start = m.group("fence"), m.group("lang").lower(), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(m.group("indent")) :])
            i += 1
        blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, skip_next))
        skip_next = False
        i += 1
    return blocks


def shell_commands(code: str, lang: str = "console") -> list[tuple[str, int | None, list[str]]]:
    """``(command, expected exit code, error lines shown)`` for each ``$ ivk`` line.

    In ``bash`` / ``sh`` / ``shell`` blocks (scripts, usually without prompts) a line that
    starts with ``ivk `` is a command too; in ``console`` blocks only ``$ ivk`` lines are.

    The expected code is 0, or what a trailing ``# exit code N`` comment says. When the
    lines shown after a command (its output) hold ``ivk: error: ...`` lines, the command
    must fail (any non-zero code unless one is stated) and print those lines on stderr.
    """
    out: list[tuple[str, int | None, list[str]]] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("$ ivk ") or line == "$ ivk":
            cmd = line[2:]
        elif lang != "console" and line.startswith("ivk "):
            cmd = line
        else:
            continue
        if cmd.split()[:2] == ["ivk", "serve"]:
            continue  # a server in the foreground until Ctrl-C
        while cmd.endswith("\\") and i < len(lines):
            cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        shown: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith("$ "):
            if lines[i].strip().startswith("ivk: error:"):
                shown.append(lines[i].strip())
            i += 1
        expected: int | None = None if shown else 0
        m = _EXIT.search(cmd)
        if m:
            expected = int(m.group(1))
            cmd = cmd[: m.start()].rstrip()
        out.append((cmd, expected, shown))
    return out


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


@pytest.fixture
def docs_cwd(tmp_path: Path) -> Iterator[Path]:
    """A temporary working directory with ``examples/workflows`` copied in."""
    shutil.copytree(REPO / "examples" / "workflows", tmp_path / "examples" / "workflows")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _run_python(code: str, namespace: dict[str, Any], where: str) -> None:
    compiled = compile(code, where, "exec")
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compiled, namespace)
    except BaseException as exc:
        raise AssertionError(f"{where} raised {exc!r}\n--- output ---\n{buf.getvalue()}") from exc


def _run_ivk(
    cmd: str, expected: int | None, shown: list[str], cwd: Path, url: str, where: str
) -> None:
    argv = shlex.split(cmd, comments=True)
    assert argv[0] == "ivk", where
    env = {**os.environ, "INVOKEAI_URL": url, "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("INVOKEAI_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "invokeai_py_client.cli", *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    said = "a non-zero code" if expected is None else str(expected)
    ok = proc.returncode != 0 if expected is None else proc.returncode == expected
    assert ok, (
        f"{where}: `{cmd}` exited {proc.returncode}, the docs say {said}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    )
    printed = {" ".join(line.split()) for line in proc.stderr.splitlines()}
    for line in shown:
        assert " ".join(line.split()) in printed, (
            f"{where}: `{cmd}` did not print the error the docs show:\n{line}\n"
            f"--- stderr ---\n{proc.stderr[-3000:]}"
        )


# --------------------------------------------------------------------------- pure tests


def test_extract_blocks_and_commands() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n"
        f"{SKIP_MARK}\n```console\n$ ivk serve\n```\n"
        "```console\n$ ivk inputs a.json \\\n    --json   # exit code 2\nout\n$ ls\n```\n"
        "```text\n$ ivk nothing\n```\n"
    )
    blocks = extract_blocks(text)
    assert [(b.lang, b.skip) for b in blocks] == [
        ("python", False),
        ("console", True),
        ("console", False),
        ("text", False),
    ]
    assert blocks[0].code == "x = 1\n"
    assert shell_commands(blocks[2].code) == [("ivk inputs a.json --json", 2, [])]
    script = "python3 dev.py demo\nivk sheet out/x\n"
    assert shell_commands(script, "bash") == [("ivk sheet out/x", 0, [])]
    assert shell_commands(script, "console") == []
    assert shell_commands("$ ivk serve --fast\n") == []
    shown = "$ ivk run a.json --set X=1\nivk: error: bad X\n$ ivk sheet d\n"
    assert shell_commands(shown) == [
        ("ivk run a.json --set X=1", None, ["ivk: error: bad X"]),
        ("ivk sheet d", 0, []),
    ]


def test_every_page_has_runnable_examples() -> None:
    """The guide's own pages each run at least one example."""
    guide = [
        "quickstart.md",
        "workflows-and-inputs.md",
        "running-and-events.md",
        "sweeps.md",
        "outputs-and-manifests.md",
        "resume-and-recovery.md",
    ]
    for name in guide:
        blocks = extract_blocks((REPO / "docs" / name).read_text(encoding="utf-8"))
        runnable = [
            b
            for b in blocks
            if not b.skip
            and (b.lang == "python" or (b.lang in SHELL_LANGS and shell_commands(b.code, b.lang)))
        ]
        assert runnable, f"docs/{name} has no runnable example"


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.MULTILINE)}


def test_guide_links_resolve() -> None:
    """Relative links (and their #anchors) in the guide and the README point at something."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken: list[str] = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, mailto: ...
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


# --------------------------------------------------------------------------- server


@pytest.mark.server
@pytest.mark.parametrize("md", markdown_files(), ids=_ids(markdown_files()))
def test_markdown_examples_run(md: Path, server: LocalServer, docs_cwd: Path) -> None:
    """Run every python block and every ``$ ivk`` line of one Markdown file, in order."""
    blocks = extract_blocks(md.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    ran = 0
    try:
        for block in blocks:
            if block.skip:
                continue
            code = block.code.replace(DOC_URL, server.url)
            where = f"{md.relative_to(REPO)}:{block.line}"
            if block.lang == "python":
                _run_python(code, namespace, where)
                ran += 1
            elif block.lang in SHELL_LANGS:
                for cmd, expected, shown in shell_commands(code, block.lang):
                    _run_ivk(cmd, expected, shown, docs_cwd, server.url, where)
                    ran += 1
    finally:
        for value in list(namespace.values()):
            if isinstance(value, InvokeAIClient):
                value.close()  # the examples' clients: stop their event threads
    if ran == 0:
        pytest.skip(f"{md.name} has no runnable example")
