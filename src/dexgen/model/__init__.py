"""The DexGen model: a diffusion prior over future fingertip motion given proprioception, and an inverse dynamics
model from fingertip motion to joint targets (method.md section 2.4). The motion command is never an input here:
it enters only through guidance at sampling time (``dexgen.controller``)."""
