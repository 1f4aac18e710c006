"""`clinical-mm evaluate` and `clinical-mm monitor`: accuracy, calibration and bias reports a clinical AI committee can sign."""
