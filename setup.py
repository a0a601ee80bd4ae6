"""keras-resnet-cifar: the CIFAR ResNets of He et al. 2015 for Keras 3."""

from setuptools import find_packages, setup

setup(
    name="keras-resnet-cifar",
    version="0.1.0",
    description="Keras 3 / TensorFlow model zoo of the CIFAR ResNets of He et al. (2015)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["keras_resnet_cifar", "keras_resnet_cifar.*"]),
    # The pretrained CIFAR-10 weights and their licence (pretrained.py pins the hashes).
    package_data={"keras_resnet_cifar.models": ["weights/*.weights.h5", "weights/LICENSE"]},
    # The tools as commands (keras_resnet_cifar/cli/); tools/*.py are thin shims.
    entry_points={
        "console_scripts": [
            "krc-train = keras_resnet_cifar.cli.train:run",
            "krc-train-imagenet = keras_resnet_cifar.cli.train_imagenet:run",
            "krc-evaluate = keras_resnet_cifar.cli.evaluate:run",
            "krc-predict = keras_resnet_cifar.cli.predict:run",
            "krc-export = keras_resnet_cifar.cli.export:run",
            "krc-benchmark = keras_resnet_cifar.cli.benchmark:run",
            "krc-profile-step = keras_resnet_cifar.cli.profile_step:run",
            "krc-convert-weights = keras_resnet_cifar.cli.convert_weights:run",
            "krc-describe = keras_resnet_cifar.cli.describe:run",
            "krc-compare = keras_resnet_cifar.cli.compare:run",
            "krc-zoo = keras_resnet_cifar.cli.zoo:run",
            "krc-to-npz = keras_resnet_cifar.cli.to_npz:run",
        ]
    },
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21",
        # TF Serving's PredictionLog protos for the warm-up records; its
        # versions follow TensorFlow's (2.21 needs tensorflow>=2.21,<3).
        "tensorflow-serving-api>=2.21,<3",
        # >= 3.13: TerminateOnNaN(raise_error=True). < 3.16: the suite last
        # passed on 3.15 (the compiled torch step uses Keras's public layer
        # input/output tensors, train_step and optimizer.apply); raise the bound
        # once a new release passes it.
        "keras>=3.13,<3.16",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports it on Python >= 3.9 without
        # declaring it (tensorflow/datasets#11212).
        "importlib_resources",
        "numpy",
        "absl-py",
        # TensorFlow 2.21 no longer installs it; the TensorBoard callback needs it.
        "tensorboard",
    ],
    extras_require={
        # jax: the tests also run the model code under KERAS_BACKEND=jax.
        # torch: the weight-conversion tests compare with a PyTorch forward;
        # pinned, as in the torch extra below.
        # matplotlib: the diagram and plain-vs-residual plot tests.
        # setuptools: the wheel test builds without network (bdist_wheel is
        # built in from 70.1).
        # pytest-xdist: the suite runs on two workers (pytest.ini); filelock:
        # the workers make each shared run once (tests/conftest.py).
        "test": [
            "pytest",
            "pytest-xdist",
            "filelock",
            "jax",
            "pillow",
            "torch==2.13.0",
            "matplotlib",
            "setuptools>=70.1",
            "ruff",
            # The LiteRT and ONNX exports (tests/test_portable.py); as the extras below.
            "ai-edge-litert>=2.3,<2.4",
            "tf2onnx>=1.17,<1.18",
            "onnx>=1.23,<2",
            "onnxruntime>=1.32,<2",
        ],
        # Diagrams and the plain-vs-residual study (tools/make_docs.py, krc-compare).
        "study": ["matplotlib"],
        # torch: training under Keras's torch backend, which krc-train picks
        # on every CPU class (docs/performance.md, Defaults chosen); also
        # reading PyTorch checkpoints (krc-convert-weights) and the PyTorch
        # peer of krc-benchmark. Pinned: an open range resolves to the newest
        # CUDA build; a CPU-only machine installs the CPU build first (README,
        # "Install and quick start").
        "torch": ["torch==2.13.0"],
        # jax: tools/train.py --backend=jax (one or several processes); pillow
        # decodes image folders where TensorFlow is not installed.
        "jax": ["jax", "pillow"],
        "gpu": ["tensorflow[and-cuda]>=2.21"],
        # krc-export --format=litert, and LiteRT files in krc-evaluate, krc-predict and
        # krc-benchmark; tested with ai-edge-litert 2.3.0 (its interpreter's operator listing
        # is read for the model card, serving/portable.py).
        "litert": ["ai-edge-litert>=2.3,<2.4"],
        # krc-export --format=onnx through tf2onnx (which pins its TensorFlow range per release),
        # and ONNX files in the other commands through onnxruntime; tested with tf2onnx 1.17.0,
        # onnx 1.23.2, onnxruntime 1.32.0.
        "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.23,<2", "onnxruntime>=1.32,<2"],
    },
)
