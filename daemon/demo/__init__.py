"""Demo traffic: real scikit-learn models whose logs feed the daemon without a real deployment."""
