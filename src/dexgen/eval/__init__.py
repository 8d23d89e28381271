"""Evaluation: the model alone (``model_eval``) and, later, the teleoperation-assistance suite."""
