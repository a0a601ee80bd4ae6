"""The docs stay true: the paths they name exist, their commands parse, their links resolve."""

import ast
import json
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers import REPO

DOCS = [REPO / "README.md", REPO / "BUILD.md", *sorted((REPO / "docs").glob("*.md"))]
# A repository path: one of the top-level folders, then a path; optionally ::test_name.
PATH = re.compile(r"(?<![\w/.<-])((?:keras_resnet_cifar|tools|tests|docs|\.ci)/[\w./*-]*)(::\w+)?")
COMMAND = re.compile(r"(?:python\s+tools/(\w+)\.py|\b(krc-[a-z-]+))(?=\s|$)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMANDS = dict(re.findall(r'"(krc-[a-z-]+) = keras_resnet_cifar\.cli\.(\w+):run"', (REPO / "setup.py").read_text()))


def _name(doc):
    return str(doc.relative_to(REPO))


def split_code(text):
    """``(code, prose)``: code-block lines (continuations joined), and the rest."""
    code, prose, fenced, pending = [], [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            pending += line.strip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                code.append(pending.strip())
                pending = ""
        else:
            prose.append(line)
    return code, "\n".join(prose)


def repo_paths(text):
    """Every repository path a document names, as ``(path, test_name or None)``."""
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".,:;")
        yield path, (match.group(2) or "")[2:] or None


def command_lines(text):
    """``(launcher, args)`` for every command shown: ``tools/X.py`` or ``krc-X``, with its arguments."""
    code, prose = split_code(text)
    candidates = code + [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose, re.S)]
    for candidate in candidates:
        for match in COMMAND.finditer(candidate):
            rest = candidate[match.end() :]
            try:
                tokens = shlex.split(rest, comments=True)
            except ValueError:
                tokens = rest.split()
            args = []
            for token in tokens:
                if token in ("&&", "|", ";", "||") or token.startswith((">", "2>")):
                    break
                args.append(token)
            launcher = f"tools/{match.group(1)}.py" if match.group(1) else match.group(2)
            yield launcher, [a for a in args if not a.startswith(("--help", "-h"))]


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(doc):
    return {slug(line.lstrip("#")) for line in doc.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_repository_path_exists(doc):
    missing = []
    for path, test_name in repo_paths(doc.read_text()):
        found = sorted(REPO.glob(path)) if "*" in path else [REPO / path] if (REPO / path).exists() else []
        if not found:
            missing.append(path)
        elif test_name and not re.search(rf"^def {test_name}\(", found[0].read_text(), re.M):
            missing.append(f"{path}::{test_name}")
    assert not missing, f"{_name(doc)} names what does not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_link_and_image_resolves(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{_name(doc)} has broken links: {broken}"


def _module(launcher):
    if launcher.startswith("krc-"):
        assert launcher in COMMANDS, f"{launcher} is not a command setup.py installs"
        return f"import keras_resnet_cifar.cli.{COMMANDS[launcher]}"
    assert (REPO / launcher).exists(), f"{launcher} does not exist"
    return (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('tool', {str(REPO / launcher)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))"
    )


def _dry_parse(launcher, argvs):
    """The flag errors of each argument list, parsed by the tool's own flags in a fresh process."""
    program = (
        "import json, sys\nfrom absl import flags\n"
        f"{_module(launcher)}\n"
        "errors = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        flags.FLAGS(['prog', *argv])\n"
        "    except flags.Error as e:\n"
        "        errors.append(f'{argv}: {e}')\n"
        "    flags.FLAGS.unparse_flags()\n"
        "print(json.dumps(errors))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program, json.dumps(argvs)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _all_commands():
    found = {}
    for doc in DOCS:
        for launcher, args in command_lines(doc.read_text()):
            found.setdefault(launcher, []).append(args)
    return found


def _raw_code_lines(text):
    """Lines in fenced or indented blocks, read without ``split_code``."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            yield line.strip()


def test_the_docs_show_commands():
    found = _all_commands()
    # The README's quick start, every flag of it.
    quick_start = ["--n=3", "--shortcut=A", "--data_dir=../shared/cifar10-jpeg", "--schedule=onecycle", "--epochs=1"]
    assert quick_start + ["--model_dir=runs/quickstart"] in found["krc-train"]
    # Every code-block line that runs a tool is read, with its flags.
    for doc in DOCS:
        text = doc.read_text()
        shown = [line for line in _raw_code_lines(text) if COMMAND.search(line)]
        flagged = [line for line in shown if re.search(r"(?:\.py|krc-[a-z-]+)\s+.*--\w", line)]
        read = list(command_lines(text))
        assert len(read) >= len(shown), f"{_name(doc)}: {len(read)} commands read, {len(shown)} shown"
        assert sum(bool(args) for _, args in read) >= len(flagged), f"{_name(doc)}: flags lost"


@pytest.mark.parametrize("launcher", sorted(_all_commands()))
def test_every_command_shown_parses_its_flags(launcher):
    argvs = _all_commands()[launcher]
    assert _dry_parse(launcher, argvs) == []


def test_a_broken_path_and_a_bad_flag_are_caught():
    # The checks above are only worth something if they fail on a stale doc.
    stale = "See `keras_resnet_cifar/augment.py` and `tests/test_resnet.py::test_nothing_here`."
    paths = list(repo_paths(stale))
    assert paths == [("keras_resnet_cifar/augment.py", None), ("tests/test_resnet.py", "test_nothing_here")]
    assert not (REPO / paths[0][0]).exists()
    assert not re.search(r"^def test_nothing_here\(", (REPO / "tests/test_resnet.py").read_text(), re.M)
    shown = "    python tools/train.py --n=3 \\\n        --shortcut=C --no_such_flag=1   # comment\n"
    [(launcher, args)] = list(command_lines(shown))
    assert (launcher, args) == ("tools/train.py", ["--n=3", "--shortcut=C", "--no_such_flag=1"])
    errors = _dry_parse(launcher, [args[:2], args[2:], ["--n=3", "--shortcut=A"]])
    assert len(errors) == 2 and "shortcut" in errors[0] and "no_such_flag" in errors[1]


def test_the_readme_is_short_and_starts_with_the_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    first = "\n".join(lines[:40])
    assert 'pip install -e ".[torch]"' in first and 'pip install -e ".[test]" && .venv/bin/python -m pytest' in first


def test_the_ci_script_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]"' in readme and '-e ".[test]"' in ci
    assert "python -m pytest" in readme and ".venv/bin/python -m pytest" in ci


def test_the_docs_say_nothing_about_how_the_project_was_developed():
    words = re.compile(r"\b(session|issue \d+|work item|round \d+ of work)\b|(?<!\w)#\d+\b|\.\./", re.I)
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        # The one outside path allowed: the data the quick start trains on.
        text = doc.read_text().replace("--data_dir=../shared/cifar10-jpeg", "--data_dir=DATA")
        hits = [line for line in text.splitlines() if words.search(line)]
        assert not hits, f"{_name(doc)}: {hits}"


def test_the_shim_docstrings_name_their_command():
    for module, command in ((m, c) for c, m in COMMANDS.items()):
        tree = ast.parse((REPO / "tools" / f"{module}.py").read_text())
        assert f"`{command}`" in ast.get_docstring(tree)
