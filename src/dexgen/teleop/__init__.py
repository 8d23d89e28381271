"""Command sources and the raw-teleoperation baseline: how coarse fingertip commands are made and executed
without a learned prior."""
