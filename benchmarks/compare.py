"""Compare agents and baselines over a grid of rewards, seeds and variants: ``cotimage bench`` as a module.

    python -m benchmarks.compare --preset quick --out runs/bench/quick

Same options as ``cotimage bench`` (``--help``); see docs/benchmarks.md.
"""

from cotimage.bench.cli import main

if __name__ == "__main__":
    main(prog="python -m benchmarks.compare")
