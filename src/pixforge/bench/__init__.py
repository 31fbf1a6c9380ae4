"""Speed and memory benchmarks (``pixforge bench``); every figure is a ratio to a baseline run beside it."""
