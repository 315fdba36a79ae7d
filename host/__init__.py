"""resilinet-mcu host side: datasets, topologies, training, evaluation, build and harness."""
import os as _os

# TensorFlow's C++ start-up chatter hides our own output; users can still raise it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
