"""The history of drill runs: a SQLite database rebuilt from journals, trends, the score."""
