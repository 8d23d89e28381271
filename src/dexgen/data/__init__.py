"""Dataset stage: the schema of recorded expert motion, the HDF5 episode store, training windows and statistics."""
