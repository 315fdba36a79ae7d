"""resilinet-mcu host side: datasets, topologies, training, evaluation, build and harness."""
