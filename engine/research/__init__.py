"""Parameter research over replays: `crot optimize` (an Optuna study with walk-forward
windows, local worker processes or many machines on one shared storage) and the look-ahead
check (`crot optimize lookahead`). Nothing here writes the user's `.env`."""
