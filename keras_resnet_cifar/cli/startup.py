"""Keeps the native libraries' noise (TensorFlow, LiteRT, libjpeg, the PyTorch profiler) off the commands' stderr.

TensorFlow's C++ side writes these before absl logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not hold all of them back, and which ones appear
depends on the CPU class: the oneDNN notice only where TensorFlow turns oneDNN
on by default (AVX-512, VNNI, AMX), the CUDA lines only in GPU builds. A bad
input must still print exactly one line on every class.
"""

import os
import re
import sys
import threading

# One entry a source, with an example of what it prints.
NOISE = (
    # "All log messages before absl::InitializeLog() is called are written to STDERR"
    r"All log messages before absl::InitializeLog",
    # "I .../cuda/cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used."
    r"cudart_stub\.cc|cuda_platform\.cc|cuda_dnn\.cc|cuda_fft\.cc|cuda_blas\.cc|cuda_executor\.cc",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    # "I .../cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available CPU
    # instructions ... To enable the following instructions: AVX2 AVX512F AVX512_VNNI AMX_TILE ..."
    r"cpu_feature_guard\.cc|To enable the following instructions|rebuild TensorFlow with the appropriate",
    # "I .../util/port.cc:153] oneDNN custom operations are on. You may see slightly different
    # numerical results ... set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`."
    r"oneDNN custom operations are on|util/port\.cc",
    # "E .../computation_placer.cc] computation placer already registered."
    r"computation_placer\.cc",
    # The LiteRT converter and interpreter, on every model they convert or load:
    # "W .../tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
    # "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: INT8",
    # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    r"tf_tfl_flatbuffer_helpers\.cc|^fully_quantize: \d|^INFO: Created TensorFlow Lite XNNPACK delegate",
    # The PyTorch profiler (krc-profile-step), on each trace it starts and stops:
    # "USDT:2026-12-03 12:52:58 5558:5558 SyncActivityProfilerHandler.cpp:52] profiler_start"
    r"SyncActivityProfilerHandler\.cpp",
    # libjpeg, inside TensorFlow's decoder, on a JPEG cut off in its header; the
    # "cannot decode image <file>" error that follows names the file and the cause:
    # "Improper call to JPEG library in state 201"
    r"^Improper call to JPEG library in state \d+",
)
_NOISE = re.compile("|".join(f"(?:{p})" for p in NOISE))


def is_noise(line):
    """Whether ``line`` is one of TensorFlow's native start-up lines."""
    return bool(_NOISE.search(line))


class StderrFilter:
    """Drops the native start-up noise from file descriptor 2, passing every other line on."""

    def __init__(self):
        self._original = os.dup(2)
        read, self._write = os.pipe()
        os.dup2(self._write, 2)
        self._thread = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self._thread.start()

    def _pump(self, read):
        with os.fdopen(read, "rb") as pipe, os.fdopen(os.dup(self._original), "wb", buffering=0) as out:
            for line in pipe:
                if not is_noise(line.decode(errors="replace")):
                    out.write(line)

    def close(self):
        """Restores descriptor 2 and waits until every passed line is written."""
        sys.stderr.flush()
        os.dup2(self._original, 2)
        os.close(self._write)
        self._thread.join(timeout=5)
