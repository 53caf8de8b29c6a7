"""Training: the engine, its builders and run state, the optimizer and LR schedule, checkpoints."""
