"""The commands: installed on PATH, --help, one-line errors, reported bugs, quiet start-up."""

import ast
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from keras_resnet_cifar.cli import app, startup
from tests.helpers import REPO

# console_scripts as setup.py declares them: {command: module}.
COMMANDS = dict(re.findall(r'"(krc-[a-z-]+) = keras_resnet_cifar\.cli\.(\w+):run"', (REPO / "setup.py").read_text()))
SCRIPTS = pathlib.Path(sys.executable).parent


def _run(args, env=None, timeout=300):
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})), cwd=REPO
    )


def _under_app_run(code, env=None):
    """Runs ``code`` (which defines ``main``) under ``app.run`` in a fresh process."""
    program = f"from keras_resnet_cifar.cli import app\n{code}\napp.run(main)\n"
    return _run([sys.executable, "-c", program], env=env)


def test_every_tool_is_a_command_and_a_shim():
    modules = sorted(p.stem for p in (REPO / "keras_resnet_cifar" / "cli").glob("*.py"))
    assert sorted(COMMANDS.values()) == sorted(set(modules) - {"__init__", "app", "startup", "supervise"})
    for module in COMMANDS.values():
        shim = (REPO / "tools" / f"{module}.py").read_text()
        assert f"from keras_resnet_cifar.cli.{module} import run" in shim
        assert "sys.path" not in shim


def test_help_examples_keep_their_line_breaks():
    # A lone backslash ending a docstring's line joins it to the next before --help prints it.
    for path in [*(REPO / "keras_resnet_cifar" / "cli").glob("*.py"), *(REPO / "tools").glob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"(?<!\\)\\$", line), f"{path.name}:{number}: write \\\\ for a shown backslash"


def test_no_code_edits_sys_path():
    for path in [*(REPO / "keras_resnet_cifar").rglob("*.py"), *(REPO / "tools").glob("*.py")]:
        assert "sys.path" not in path.read_text(), path


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_is_on_path_and_shows_its_own_help(command):
    script = SCRIPTS / command
    assert script.exists(), f"{script} missing: pip install -e . puts the commands there"
    result = _run([str(script), "--help"])
    assert result.returncode == 0, result.stderr
    source = (REPO / "keras_resnet_cifar" / "cli" / f"{COMMANDS[command]}.py").read_text()
    first_line = ast.get_docstring(ast.parse(source)).splitlines()[0]
    assert first_line in result.stdout
    # The tool's own flags are listed, not only absl's.
    own = re.findall(r'DEFINE_\w+\(\s*"(\w+)"', source)
    if own:
        assert f"--{own[0]}" in result.stdout or f"--[no]{own[0]}" in result.stdout


def test_the_shim_runs_the_same_command():
    result = _run([sys.executable, str(REPO / "tools" / "train.py"), "--help"])
    assert result.returncode == 0
    assert "--shortcut" in result.stdout and "--data_dir" in result.stdout


@pytest.mark.parametrize(
    "line",
    [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796151106.438071    3340 port.cc:153] oneDNN custom operations are on. You may see "
        "slightly different numerical results due to floating-point round-off errors from different "
        "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
        "I0000 00:00:1796151106.439047    3340 cudart_stub.cc:31] Could not find cuda drivers on your "
        "machine, GPU will not be used.",
        "I0000 00:00:1796151106.493763    3340 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
        "to use available CPU instructions in performance-critical operations.",
        # AVX2, AVX-512 with VNNI and BF16, and AMX machines name different instructions.
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.",
        "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
        "rebuild TensorFlow with the appropriate compiler flags.",
        "To enable the following instructions: AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE "
        "AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
        "E0000 00:00:1732.1  1 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register "
        "factory for plugin cuDNN when one has already been registered",
        "E0000 00:00:1732.2  1 computation_placer.cc:177] computation placer already registered.",
        # The LiteRT converter and interpreter.
        "W0000 00:00:1796295362.901085   23845 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
        "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: INT8",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        # The PyTorch profiler.
        "USDT:2026-12-03 12:52:58 5558:5558 SyncActivityProfilerHandler.cpp:52] profiler_start",
        # libjpeg in TensorFlow's decoder, before our error naming the file.
        "Improper call to JPEG library in state 201",
    ],
)
def test_each_kind_of_start_up_line_is_noise(line):
    assert startup.is_noise(line)


@pytest.mark.parametrize(
    "line",
    [
        "error: --data_dir /x does not exist or is not a directory",
        "internal error (a bug, please report it): KeyError: 'name'",
        "interrupted: re-run the same command to resume from the last completed epoch",
        "Resuming from runs/resnet20/backup: 1 epoch(s) done, going on with epoch 2",
    ],
)
def test_our_own_lines_are_not_noise(line):
    assert not startup.is_noise(line)


def test_the_filter_passes_our_line_and_drops_every_kind_of_noise():
    noise = "\\n".join(
        [
            "I0000 port.cc:153] oneDNN custom operations are on. You may see slightly different results.",
            "I0000 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
            "To enable the following instructions: AVX512F AMX_TILE AMX_BF16, in other operations, rebuild",
        ]
    )
    result = _under_app_run(
        f"import os\ndef main(argv):\n    os.write(2, b'{noise}\\n')\n    raise app.UsageError('bad flag')\n"
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: bad flag"]


def test_tensorflow_start_up_leaves_one_error_line():
    # On AVX-512 machines this import prints the oneDNN notice (twice); on
    # AVX2 the CPU-feature lines: either way one line must remain.
    result = _under_app_run(
        "def main(argv):\n    import tensorflow  # noqa: F401\n    raise app.UsageError('bad flag')\n"
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: bad flag"]


def test_an_internal_error_prints_one_line_naming_its_saved_traceback():
    result = _under_app_run("def main(argv):\n    return {}['name']\n", env={app.TRACEBACK_VARIABLE: ""})
    assert result.returncode == 70
    [line] = result.stderr.splitlines()
    assert line.startswith("internal error (a bug, please report it): KeyError: 'name'; traceback in ")
    path = re.search(r"traceback in (\S+) ", line).group(1)
    saved = pathlib.Path(path).read_text()
    os.remove(path)
    assert saved.startswith("Traceback (most recent call last):")
    assert 'File "<string>", line 3, in main' in saved and saved.endswith("KeyError: 'name'\n")
    assert f"{app.TRACEBACK_VARIABLE}=1" in line


@pytest.mark.parametrize(
    "stream, log_level",
    # stderr with TensorFlow's native lines filtered (level 3: a pipe and a thread) and without (0).
    [("stdout", "3"), ("stderr", "3"), ("stderr", "0")],
)
def test_a_reader_that_has_gone_stops_the_output_not_the_work(stream, log_level, tmp_path):
    # ``krc-evaluate ... 2>&1 | head -1``: the pipe closes while the command still prints.
    done = tmp_path / "result.json"
    code = (
        "import sys\n"
        "def main(argv):\n"
        f"    for i in range(3000):\n        print('line', i, file=sys.{stream}, flush=True)\n"
        f"    open({str(done)!r}, 'w').write('{{}}')\n"
    )
    program = f"from keras_resnet_cifar.cli import app\n{code}\napp.run(main)\n"
    child = subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": log_level},
    )
    closed, other = (child.stdout, child.stderr) if stream == "stdout" else (child.stderr, child.stdout)
    closed.close()
    rest = other.read().decode()
    assert child.wait(timeout=120) == 0, rest
    assert rest == "" and done.read_text() == "{}"


def test_a_command_leaves_none_of_autographs_source_files_behind(tmp_path):
    # Autograph writes each converted function to a temporary .py file, which only its atexit handler
    # deleted; the commands end with os._exit.
    code = (
        "import sys\n"
        "import tensorflow as tf\n"
        "def double_positive(x):\n"
        "    if x > 0:\n"
        "        x = x * 2\n"
        "    return x\n"
        "def main(argv):\n"
        "    print([int(x) for x in tf.data.Dataset.range(3).map(double_positive).as_numpy_iterator()])\n"
        "    print(sorted(name for name in sys.modules if name.startswith('__autograph_generated_file')))\n"
    )
    program, temporary = tmp_path / "program.py", tmp_path / "tmp"
    program.write_text(f"from keras_resnet_cifar.cli import app\n{code}\napp.run(main)\n")  # autograph reads its source
    temporary.mkdir()
    result = _run([sys.executable, str(program)], env={"TMPDIR": str(temporary)})
    assert result.returncode == 0, result.stderr
    values, converted = result.stdout.splitlines()
    assert values == "[0, 2, 4]" and converted != "[]"  # the function was converted, to a file there
    assert list(temporary.iterdir()) == []


def test_the_environment_variable_prints_the_whole_traceback():
    result = _under_app_run("def main(argv):\n    return int('x')\n", env={app.TRACEBACK_VARIABLE: "1"})
    assert result.returncode == 70
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "ValueError: invalid literal for int() with base 10: 'x'" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("internal error (a bug, please report it): ValueError")


def test_errors_are_told_apart_by_type_not_by_text(capsys):
    from keras_resnet_cifar import errors
    from keras_resnet_cifar.models import presets

    def outcome(error_or_call):
        def main(argv):
            if callable(error_or_call):
                error_or_call()
            raise error_or_call

        code = app._outcome(main, ["tool"])
        return code, capsys.readouterr().err

    # The package's own argument check: one line, exit 1; it is also a ValueError for Python callers.
    code, err = outcome(lambda: presets.resolve_n(21, None))
    assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1
    with pytest.raises(ValueError):
        presets.resolve_n(21, None)
    # A library's ValueError, and errors whose text mentions NaN, "inference" or "information", are bugs.
    for error in (ValueError("invalid literal"), RuntimeError("inference failed"), RuntimeError("NaN information")):
        code, err = outcome(error)
        assert code == 70, error
        assert err.startswith("internal error (a bug, please report it)")
    assert outcome(errors.UsageError("--x must be > 0"))[0] == 2
    assert outcome(errors.NanLossError("loss is nan"))[0] == 1
    assert outcome(errors.WriteError("cannot write x"))[0] == 1


def test_a_sigterm_that_lands_in_a_gc_callback_still_stops_the_command():
    # JAX's gc callback runs at every collection; an exception raised inside one is printed and dropped.
    result = _under_app_run(
        """
import gc, os, signal, time

def main(argv):
    def callback(phase, info):
        if phase == "start" and not sent:
            sent.append(os.getpid())
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    sent = []
    gc.callbacks.append(callback)
    gc.collect()
    gc.callbacks.remove(callback)
    time.sleep(5)
    print("completed")
    return 0
"""
    )
    assert (result.returncode, result.stdout, result.stderr) == (128 + signal.SIGTERM, "", "terminated (SIGTERM)\n")


def test_a_second_sigterm_does_not_cut_the_clean_up_of_the_first_short():
    program = """
import time
from keras_resnet_cifar.cli import app

def main(argv):
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        print("cleaning", flush=True)
        time.sleep(1)
        print("cleaned", flush=True)

app.run(main)
"""
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == "cleaning\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, out, err) == (128 + signal.SIGTERM, "cleaned\n", "terminated (SIGTERM)\n")


def test_help_exits_zero_and_a_bad_flag_does_not():
    assert _run([sys.executable, str(REPO / "tools" / "zoo.py"), "--helpfull"]).returncode == 0
    assert _run([sys.executable, str(REPO / "tools" / "zoo.py"), "--max_depth=x"]).returncode != 0


def test_an_interruption_advises_a_re_run_only_where_the_tool_resumes(capsys):
    def main(argv):
        raise app.Terminated(signal.SIGTERM)

    assert app._outcome(main, ["tool"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "terminated (SIGTERM)\n"
    assert app._outcome(main, ["tool"], resumes=True) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == (
        "terminated (SIGTERM): re-run the same command to resume from the last completed epoch\n"
    )


# Each command with the input it would fail on if it got that far: a missing one.
_OUTPUT_FLAGS = {
    "krc-to-npz": ("out", "x.npz", ["--data_dir={missing}"]),
    "krc-evaluate": ("json", "x.json", ["--model=resnet20:cifar10", "--data_dir={missing}"]),
    "krc-benchmark": ("json", "x.json", ["--data_dir={missing}"]),
    "krc-convert-weights": ("output", "x.keras", ["--checkpoint={missing}"]),
    "krc-compare": ("out", "figures", ["--depths=20", "--notrain", "--runs_dir={missing}"]),
    "krc-export": ("export_base", "deploy", ["--model={missing}"]),
}


@pytest.mark.parametrize("command", sorted(_OUTPUT_FLAGS))
def test_an_output_that_cannot_be_written_is_refused_before_the_work(command, tmp_path):
    flag, name, args = _OUTPUT_FLAGS[command]
    args = [a.format(missing=tmp_path / "missing") for a in args]
    (tmp_path / "afile").write_text("")
    cases = [(f"afile/below/{name}", f"{tmp_path / 'afile'} is a file, not a folder")]
    if flag not in ("out", "export_base") or command == "krc-to-npz":  # a file's path, not a folder's
        (tmp_path / name).mkdir()
        cases.append((name, "is a folder: give a file path"))
    for out, reason in cases:
        result = _run([str(SCRIPTS / command), *args, f"--{flag}={tmp_path / out}"])
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [result.stderr.splitlines()[0]] and f"error: --{flag} " in result.stderr
        assert reason in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["afile"] + [out for out, _ in cases[1:]])


def test_to_npz_refuses_an_out_that_train_would_not_read(tmp_path):
    result = _run([str(SCRIPTS / "krc-to-npz"), f"--data_dir={tmp_path / 'missing'}", f"--out={tmp_path / 'plain'}"])
    assert result.returncode == 2 and "must end in .npz" in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())
