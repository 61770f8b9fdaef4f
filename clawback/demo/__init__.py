"""``clawback demo``: the story, and the sample workspace and wheels it (and the tests) build on."""
