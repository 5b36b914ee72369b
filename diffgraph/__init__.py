"""Diffgraph's command line: `diffgraph serve | run | validate | convert | nodes | train-demo`."""
