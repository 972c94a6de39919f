"""heedful calibrate: thresholds from reviewed decisions (docs/calibration.md)."""
