"""Files that outlive a process: atomic writes (fileio) and weight files (weights), for training and
inference alike."""
