pytest_plugins = ["evlf.testing"]
