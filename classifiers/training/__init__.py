"""Training, export and evaluation of the Heedful classifiers (needs the `train` extra; never imported at serving time)."""
