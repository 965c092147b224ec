"""Semi-supervised training loops: ordinary Python around one step function (see cellrepro.engine.train)."""
