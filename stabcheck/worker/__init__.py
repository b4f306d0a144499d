"""The child (``python -m stabcheck.worker``): model setup, the probe loop, the
training step, held-out metrics. The only part that imports TensorFlow or Keras."""
