"""What training and inference both need to run a generator: the checkpoint format, the choice of device
and precision, and process-level memory settings. Neither ``train`` nor ``infer`` is imported here."""
