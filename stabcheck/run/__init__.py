"""The parent: the engine, the journal and resume, the scheduler, the runner and its
worker processes, the memory ladder. Never prints, never imports rich or TensorFlow."""
