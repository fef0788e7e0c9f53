"""TensorFlow tests: quiet TF's C++ logging (set before TensorFlow is first imported); where
TensorFlow is not installed the folder is not collected (the other backends still test)."""

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if importlib.util.find_spec("tensorflow") is None:
    collect_ignore_glob = ["test_*.py"]
