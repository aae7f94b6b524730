"""Calibration: county panels (FUNDS, HISTORY, CLAIMS tables) to a calibrated
instance with stated uncertainty (issue 24): tables read and validated
(`tables`), trend, shock variance components and credible admission rates
(`estimates`), severity by maximum likelihood (`severity_fit`), the instance
and calibration.json assembled (`calibrate`), and synthetic panels from a
known instance to check it against (`synthetic`). numpy/scipy only; above
data, beside economics; never imports a solver."""
