"""stabcheck: probe Keras training settings before a long job.

The package's importable surface is deliberately small and never imports TensorFlow
or any Keras backend; only ``stabcheck.worker`` (run in child processes) does.
"""

__version__ = "0.1.0"
